"""Answering service end to end (F-S1, F-S2, F-S4, F-S9): `asterisk-cube serve` as a real
process on the sandbox Asterisk, provisioned with the CLI; SIPp caller, agent phone and
forward targets; the agent uses the desktop's own JSON API + SSE (tests/agent_client.py);
a real local SMTP server (aiosmtpd) receives the call notes.

- the client's script is popped by the dialed number;
- forward: target 1 (PJSIP/agent05, no phone) does not answer, target 2 (PJSIP/agent06, a
  SIPp phone) answers, the agent announces and connects: the caller is handed over;
- forward where both targets fail: the agent is back with the caller, the client's own
  number is refused as the callback number, the note is taken and ARRIVES at the SMTP
  server with the right recipients and content.
"""

from __future__ import annotations

import asyncio
import email
import os
import time
from email import policy

import pytest
from agent_client import AgentClient, ApiError
from aiosmtpd.controller import Controller
from cubeproc import Serve
from sippkit import caller, phone
from sqlalchemy import select, update

from asterisk_cube.config import load_settings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction

pytestmark = pytest.mark.integration

PASSWORD = "agent-password-1"
DID = "4721000091"
CLIENT = "Fjord Regnskap AS"
OWN_NUMBER = "+4722000000"
RECIPIENT = "office@fjord.example"
SALES_MAIL = "ola.berg@fjord.example"
FORWARD_SECONDS = 4


class Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp(sandbox):
    inbox = Inbox()
    # a port of this test instance's range (between the AGI port and the RTP range)
    controller = Controller(inbox, hostname="127.0.0.1", port=sandbox.base_port + 625)
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def serve(sandbox, smtp, tmp_path):
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(
        ASTERISK_CUBE_DATA_DIR=str(tmp_path),
        ASTERISK_CUBE_CONFIG=str(tmp_path / "c.toml"),
        ASTERISK_CUBE_SMTP_HOST="127.0.0.1",
        ASTERISK_CUBE_SMTP_PORT=str(smtp.port),
        ASTERISK_CUBE_SMTP_SENDER="notes@cube.example",
    )
    (tmp_path / "c.toml").write_text("")
    srv = Serve(env, tmp_path)
    srv.cli("db", "upgrade")
    srv.cli(
        "client",
        "add",
        CLIENT,
        "--greeting",
        "{greeting}, {client}, du snakker med {agent}.",
        "--instruction",
        "Ask what the call is about.",
        "--hours",
        "mon-sun 00:00-24:00",
        "--handling",
        "forward",
        "--forward1",
        "PJSIP/agent05",
        "--forward2",
        "PJSIP/agent06",
        "--own-number",
        OWN_NUMBER,
        "--recipient",
        RECIPIENT,
    )
    srv.cli(
        "client",
        "employee",
        "add",
        CLIENT,
        "Ola Berg",
        "--department",
        "Salg",
        "--email",
        SALES_MAIL,
        "--handling",
        "forward",
        "--forward1",
        "PJSIP/agent05",
        "--forward2",
        "PJSIP/agent07",
    )
    srv.cli("line", "add", DID, "--name", "Fjord", "--client", CLIENT, "--offer-timeout", "10")
    srv.cli(
        "agent",
        "add",
        "agent01",
        "--name",
        "Kari Agent",
        "--endpoint",
        "PJSIP/agent01",
        "--password",
        PASSWORD,
        "--line",
        DID,
    )
    # No CLI option for the ring time per target yet: set it in the database.
    srv.sessions = make_sessionmaker(make_engine(load_settings(env=env).database_url))
    with transaction(srv.sessions) as s:
        s.execute(update(m.Client).values(forward_timeout_seconds=FORWARD_SECONDS))
    srv.cli("dialplan", "install")
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


async def working_agent(srv: Serve) -> AgentClient:
    agent = AgentClient(srv.url)
    await agent.login("agent01", PASSWORD)
    view = await agent.start()
    await agent.choose_lines([ln["line_id"] for ln in view["lines"] if ln["did"] == DID])
    await agent.ready()
    return agent


async def wait_view(agent: AgentClient, predicate, timeout=20.0, what=""):
    async with agent.events() as events:
        try:
            return await events.wait_for(predicate, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {await agent.view()}") from None


def forward_of(view):
    return (view.get("call") or {}).get("forward")


async def answered_call(agent: AgentClient, caller_id: str) -> dict:
    view = await wait_view(agent, lambda v: v["offer"], what="offer")
    assert view["offer"]["did"] == DID and view["offer"]["caller"] == caller_id
    call_id = view["offer"]["call_id"]
    await agent.accept(call_id)
    view = await wait_view(
        agent, lambda v: v["call"] and v["call"]["state"] == "connected", what="connected"
    )
    return view["call"]


async def forward_statuses(agent, until_status, timeout=25.0):
    """(status, target, attempt) of every forward view pushed until ``until_status``."""
    seen = []
    async with agent.events() as events:
        deadline = time.monotonic() + timeout
        while True:
            view = await events.next(timeout=max(0.1, deadline - time.monotonic()))
            fwd = forward_of(view)
            if fwd:
                step = (fwd["status"], fwd["target"], fwd["attempt"])
                if not seen or seen[-1] != step:
                    seen.append(step)
                if fwd["status"] == until_status:
                    return seen, view


async def test_forward_falls_back_to_target_2_and_hands_over(serve, sandbox, tmp_path):
    agent = await working_agent(serve)
    try:
        with (
            phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100),
            phone(sandbox, sandbox.agent_port(6), tmp_path / "target2", answer_ms=300) as target2,
        ):
            c = caller(
                sandbox, DID, tmp_path / "caller", caller_id="91234567", hold_ms=14000
            ).start()
            call = await answered_call(agent, "91234567")
            assert call["client_id"] is not None and call["hours"] == "open"

            # the client's script, popped by the dialed number
            script = await agent.script(call["call_id"])
            assert script["client"] == CLIENT
            assert script["greeting"].endswith(f", {CLIENT}, du snakker med Kari Agent.")
            assert script["greeting"].split(",")[0] in (
                "God morgen",
                "God ettermiddag",
                "God kveld",
            )
            assert script["handling"]["targets"] == ["PJSIP/agent05", "PJSIP/agent06"]

            started = time.monotonic()
            view = await agent.forward(call["call_id"])  # the client's standard handling
            assert forward_of(view)["target"] == "PJSIP/agent05"
            seen, view = await forward_statuses(agent, "announcing")
            took = time.monotonic() - started
            assert seen[-1] == ("announcing", "PJSIP/agent06", 2), seen
            assert ("ringing", "PJSIP/agent06", 2) in seen
            # target 1 had its ring time (or failed sooner); target 2 answered after 0.3 s
            assert took < FORWARD_SECONDS + 6, took

            view = await agent.forward_connect(call["call_id"])
            assert view["call"] is None and view["state"] == "ready"  # free for the next call
            result = await asyncio.to_thread(c.wait, 40)
            assert result.ok, result.summary()
        assert target2.stop().successful == 1
    finally:
        await agent.aclose()
    with transaction(serve.sessions) as s:
        row = s.get(m.Call, call["call_id"])
        assert row.state == m.CallState.ENDED
        assert row.end_reason == "forwarded to PJSIP/agent06"


async def test_both_targets_fail_and_the_note_arrives_by_mail(serve, sandbox, smtp, tmp_path):
    agent = await working_agent(serve)
    try:
        with phone(sandbox, sandbox.agent_port(1), tmp_path / "agent01", answer_ms=100):
            c = caller(
                sandbox, DID, tmp_path / "caller", caller_id="91234568", hold_ms=30000
            ).start()
            call = await answered_call(agent, "91234568")
            call_id = call["call_id"]
            script = await agent.script(call_id)
            sales = next(e["id"] for e in script["employees"] if e["name"] == "Ola Berg")

            await agent.forward(call_id, employee_id=sales)
            seen, view = await forward_statuses(agent, "failed", timeout=2 * FORWARD_SECONDS + 15)
            assert [s[2] for s in seen if s[0] == "ringing"] == [1, 2], seen
            assert view["call"]["state"] == "connected"  # back with the caller

            # the client's own number is refused as the callback number, nothing stored
            with pytest.raises(ApiError) as refused:
                await agent.take_note(call_id, "Call me", callback_number="22 00 00 00")
            assert (refused.value.status, refused.value.field) == (400, "callback_number")
            assert "own number" in refused.value.message

            view = await agent.take_note(
                call_id,
                "Wants an offer for 40 office chairs before Friday.",
                caller_name="Per Hansen",
                callback_number="412 34 567",
                employee_id=sales,
            )
            assert view["call"]["notes"] == 1
            await agent.hangup(call_id)
            await agent.close_call(call_id)
            c.stop()

        deadline = time.monotonic() + 20
        while not smtp.messages and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert len(smtp.messages) == 1, serve.log()
        mail_from, rcpt_tos, message = smtp.messages[0]
        assert mail_from == "notes@cube.example"
        assert sorted(rcpt_tos) == sorted([RECIPIENT, SALES_MAIL])
        assert message["Subject"] == f"Call note for {CLIENT}: Per Hansen"
        body = message.get_content()
        assert "Wants an offer for 40 office chairs before Friday." in body
        assert "+4741234567" in body  # normalised callback number
        assert "Ola Berg (Salg)" in body
        assert OWN_NUMBER not in body
    finally:
        await agent.aclose()
    with transaction(serve.sessions) as s:
        notes = list(s.scalars(select(m.CallNote)))
        assert [(n.call_id, n.mail_status) for n in notes] == [(call_id, m.MailStatus.SENT)]
