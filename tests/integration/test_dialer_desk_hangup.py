"""The desk's Hang up of a dialer call ends both legs (issue #11 item 1, outbound side): on
the sandbox, a power call to a SIPp customer who would stay on the line, hung up from the
desk; asserted from the agent phone's SIP trace, ARI and the call row."""

from __future__ import annotations

import re

import pytest
from dialerkit import (  # the dialer's runtime on the sandbox and its helpers
    add_agents,
    add_contacts,
    cube,  # noqa: F401 - fixture
    customers,  # noqa: F401 - fixture
    number,
    ready,
    until,
)
from sippkit import phone
from sqlalchemy import select
from test_call_legs_end import ari_get, assert_nothing_left, bye_reaches, byes_received

from asterisk_cube.db import models as m
from asterisk_cube.services import provisioning as p

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("customers")]


@pytest.fixture
def dialer_cube(cube):  # noqa: F811 - the fixture imported above
    return cube


async def _connected(desk, agent_id):
    view = await desk.view(agent_id)
    return view if view.call and view.call.state == "connected" else None


async def test_desk_hangup_of_a_power_call_ends_contact_and_agent(dialer_cube, sandbox, tmp_path):
    served = dialer_cube
    with served.tx() as s:
        camp = p.add_campaign(s, "Hangup", mode="power", skill="hangup", wrap_up=0)
        (agent,) = add_agents(s, [1], "hangup")
        # answers after 0.5 s and waits for us to hang up
        add_contacts(s, camp.id, [number(1, 5, 0, 1)])
    await served.start()
    desk = served.desk
    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01") as agent_phone:
        await ready(desk, [agent])
        served.running("Hangup")
        view = await until(lambda: _connected(desk, agent), timeout=20, what="connected")
        await desk.hangup(agent, view.call.call_id)
        await bye_reaches(agent_phone, "BYE to the agent's phone")
        await assert_nothing_left(sandbox, "after the desk hung up the dialer call")
        assert (await desk.view(agent)).call.state == "ended"
    with served.tx() as s:
        row = s.scalar(select(m.Call).where(m.Call.campaign_id == camp.id))
        assert row.state == m.CallState.ENDED and row.answered_at is not None


def cancels_received(sipp) -> int:
    text = (sipp.trace_dir / "messages.log").read_text(errors="replace")
    return len(re.findall(r"message received[^\n]*\n\s*CANCEL sip:", text))


async def test_desk_hangup_while_the_agents_phone_still_rings_ends_the_call(
    dialer_cube, sandbox, tmp_path
):
    """The card shows the call from the moment the dialer takes the agent (phase
    "connecting"): the agent's phone rings (here for a second), the contact waits. Hang up
    then was refused ("not connected yet") and the call went on; it now ends every leg:
    the agent's INVITE is cancelled, the contact hung up, nothing left in Asterisk, and the
    agent, who hung up on purpose, is not paused."""
    served = dialer_cube
    with served.tx() as s:
        camp = p.add_campaign(s, "Early", mode="power", skill="early", wrap_up=0)
        (agent,) = add_agents(s, [1], "early")
        add_contacts(s, camp.id, [number(1, 5, 0, 1)])  # answers, waits for our BYE
    await served.start()
    desk = served.desk
    port = sandbox.agent_port(1)
    with phone(sandbox, port, tmp_path / "agent01", answer_ms=1000) as agent_phone:
        await ready(desk, [agent])
        served.running("Early")

        async def connecting():
            view = await desk.view(agent)
            return view if view.call and view.call.state == "connecting" else None

        view = await until(connecting, timeout=20, what="the agent's phone ringing")
        await desk.hangup(agent, view.call.call_id)

        async def ended_on_the_phone():
            return cancels_received(agent_phone) + byes_received(agent_phone) >= 1

        await until(ended_on_the_phone, timeout=10, what="CANCEL or BYE to the agent's phone")
        await assert_nothing_left(sandbox, "after the desk hung up a call still connecting")

        async def free_again():
            view = await desk.view(agent)
            return view if view.call is None else None

        view = await until(free_again, timeout=10, what="the card closed")
        assert view.state == "ready", view
    with served.tx() as s:
        row = s.scalar(select(m.Call).where(m.Call.campaign_id == camp.id))
        assert row.state not in (m.CallState.DIALING, m.CallState.CONNECTED), row.state
        assert row.ended_at is not None


@pytest.mark.parametrize("cube", [{"ring_timeout": "60"}], indirect=True)
async def test_stopping_serve_ends_a_contact_still_ringing(dialer_cube, sandbox, tmp_path):
    """serve stopped while a power call rings a customer who would ring for a minute: the
    customer's leg is hung up at once, not left ringing until the originate timeout (seen
    after the demo's Ctrl-C)."""
    served = dialer_cube
    with served.tx() as s:
        camp = p.add_campaign(s, "Stop", mode="power", skill="stop", wrap_up=0)
        (agent,) = add_agents(s, [1], "stop")
        add_contacts(s, camp.id, [number(2, 0, 0, 1)])  # rings, never answers
    await served.start()
    with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01"):
        await ready(served.desk, [agent])
        served.running("Stop")

        async def ringing():
            return [c for c in await ari_get(sandbox, "channels") if c["state"] == "Ringing"]

        await until(ringing, timeout=20, what="the customer ringing")
        await served.stop()
        await assert_nothing_left(sandbox, "after serve stopped during the ring")
