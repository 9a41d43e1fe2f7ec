"""Issue #12 item 7: sessions are revocable server-side.

Before, the signed cookie was a bearer token for 12 h: logging out only cleared the
browser's copy, a new password or a role change left old sessions working, and an open
desk event stream kept sending views to a deactivated agent. Now every agent has a
``session_version``: logout, a new password, deactivation and a role change bump it, and
each request and each tick of an event stream compares it with the cookie's.

The desktop runs on a real uvicorn (``fakes.web.LiveDesktop``) and is driven over HTTP;
the account changes go through ``services.provisioning.update_agent``, as the CLI does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_client import AgentClient, next_event
from fakes.web import LiveDesktop

from asterisk_cube.db.session import transaction
from asterisk_cube.services import provisioning
from asterisk_cube.web import auth

PASSWORD = "kari-secret-1"
# A change made elsewhere (the CLI, another node) ends sessions within this long: the
# directory's copy is at most auth.RECHECK_SECONDS (2 s) old; the rest is slack for a
# loaded machine. (It was 30 s for deactivation and never for the rest.)
PROMPTLY = 10.0


@pytest.fixture
def live(tmp_path):
    with LiveDesktop(tmp_path, heartbeat=0.5) as server:
        yield server


async def logged_in(live, username="kari", password=PASSWORD) -> AgentClient:
    client = AgentClient(live.url)
    await client.login(username, password)
    return client


async def me_status(url: str, cookies) -> int:
    async with httpx.AsyncClient(base_url=url, cookies=cookies) as raw:
        return (await raw.get("/api/me")).status_code


async def wait_status(url: str, cookies, status: int, within: float) -> float:
    """Seconds until ``GET /api/me`` with ``cookies`` answers ``status``."""
    started = time.monotonic()
    while (got := await me_status(url, cookies)) != status:
        assert time.monotonic() - started < within, f"still {got} after {within} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def change(live, **changes):
    with transaction(live.sessions) as s:
        provisioning.update_agent(s, "kari", **changes)


async def test_logout_ends_the_session_and_its_copies(live):
    phone = await logged_in(live)  # the same agent on a second device
    desk = await logged_in(live)
    stolen = dict(desk.http.cookies)
    assert await me_status(live.url, stolen) == 200
    await desk.logout()
    # the copied cookie is dead at once (same process: no waiting for the cache)
    assert await me_status(live.url, stolen) == 401
    assert await me_status(live.url, dict(phone.http.cookies)) == 401
    # and a new login works
    again = await logged_in(live)
    assert (await again.http.get("/api/me")).status_code == 200
    for c in (phone, desk, again):
        await c.aclose()


@pytest.mark.parametrize(
    "changes",
    [{"password": "kari-new-secret-2"}, {"active": False}, {"role": "supervisor"}],
    ids=["new password", "deactivated", "role changed"],
)
async def test_account_changes_end_existing_sessions(live, changes):
    client = await logged_in(live)
    cookies = dict(client.http.cookies)
    assert await me_status(live.url, cookies) == 200
    change(live, **changes)  # what `asterisk-cube agent set` does, from another process
    await wait_status(live.url, cookies, 401, within=PROMPTLY)
    if changes.get("active") is not False:
        fresh = await logged_in(live, password=changes.get("password", PASSWORD))
        assert (await fresh.http.get("/api/me")).status_code == 200
        await fresh.aclose()
    await client.aclose()


async def test_open_event_stream_ends_when_the_agent_is_deactivated(live):
    client = await logged_in(live)
    async with client.event_stream("/desk/events") as resp:
        lines = resp.aiter_lines()
        name, data = await asyncio.wait_for(next_event(lines, "desk"), 10)
        assert name == "view"
        change(live, active=False)
        # no more views: the stream says the login is over and ends
        name, data = await asyncio.wait_for(next_event(lines, "desk"), PROMPTLY)
        assert name == "refused" and json.loads(data)["error"] == "login_required"
        with pytest.raises(EOFError):
            await asyncio.wait_for(next_event(lines, "desk"), 5)
    await client.aclose()


async def test_checks_do_not_read_the_database_per_request(live):
    """One query for the whole accounts table per RECHECK_SECONDS, not one per request."""
    client = await logged_in(live)
    reads = []

    def count(conn, cursor, statement, *args):
        if "FROM agents" in statement:
            reads.append(statement)

    engine = live.sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        for _ in range(50):
            assert (await client.http.get("/api/me")).status_code == 200
        elapsed = time.monotonic() - started
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # at most one re-read per started RECHECK_SECONDS window
    assert len(reads) <= 1 + int(elapsed / auth.RECHECK_SECONDS), (len(reads), elapsed)
    await client.aclose()


async def test_open_panel_stream_ends_when_the_supervisor_is_demoted(tmp_path):
    from fakes.panel import LivePanel
    from panel_client import SupervisorClient

    with LivePanel(tmp_path) as panel:
        async with SupervisorClient(panel.url) as sup:
            await sup.login("siri", "siri-secret-1")
            async with sup.event_stream("/panel/events") as resp:
                lines = resp.aiter_lines()
                name, _data = await asyncio.wait_for(next_event(lines, "panel"), 10)
                assert name != "refused"
                with transaction(panel.sessions) as s:
                    provisioning.update_agent(s, "siri", role="agent")

                async def refused():
                    while True:  # patches may come first; then the stream says why it ends
                        name, data = await next_event(lines, "panel")
                        if name == "refused":
                            return json.loads(data)

                assert (await asyncio.wait_for(refused(), PROMPTLY))["error"] == "login_required"
                with pytest.raises(EOFError):
                    await asyncio.wait_for(next_event(lines, "panel"), 5)
