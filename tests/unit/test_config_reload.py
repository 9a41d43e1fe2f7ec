# ruff: noqa: F811 - pytest fixtures are parameters named like the imported fixture
"""Configuration changes made by another process (the CLI) reach a running distributor,
dialer and entry cache: the version bump, the watcher and the distributor's reload
(issue #11 item 6)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import select, update
from support.fakes import FakeTelephony
from test_cli import run  # noqa: F401 (fixture)
from test_distributor import make, settle, start_work, world  # noqa: F401 (fixture)

from asterisk_cube.acd import contract as c
from asterisk_cube.db import models as m
from asterisk_cube.db.config_version import ConfigWatcher, read_version
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction
from asterisk_cube.services import provisioning as p


def cli_sessions(sessions):
    """Sessions of another process on the same database (what the CLI opens)."""
    return make_sessionmaker(make_engine(str(sessions.kw["bind"].url)))


def cli(world):
    return cli_sessions(world[0])


def version(sessions) -> int:
    with sessions.kw["bind"].connect() as conn:
        return read_version(conn)


# ------------------------------------------------------------------ the version bump


def test_every_provisioning_write_bumps_the_version_in_its_transaction(world):
    sessions = cli(world)
    v0 = version(sessions)
    with transaction(sessions) as s:
        p.add_line(s, "400", "New")
    v1 = version(sessions)
    assert v1 == v0 + 1  # once per transaction, however many flushes
    with transaction(sessions) as s:
        p.grant_lines(s, "ann", ["400"])
    v2 = version(sessions)
    assert v2 > v1
    with transaction(sessions) as s:
        p.update_campaign(s, "Hot", wrap_up=30)
    assert version(sessions) > v2


def test_bulk_statements_on_configuration_tables_bump_too(world):
    sessions = cli(world)
    v0 = version(sessions)
    with transaction(sessions) as s:
        s.execute(update(m.Agent).where(m.Agent.username == "ann").values(active=False))
    assert version(sessions) == v0 + 1
    with transaction(sessions) as s:
        s.execute(update(m.Call).values(caller_number="1"))  # not configuration
    assert version(sessions) == v0 + 1


def test_a_bump_rolled_back_with_a_savepoint_is_made_again(world):
    sessions = cli(world)
    v0 = version(sessions)
    with transaction(sessions) as s:
        with contextlib.suppress(RuntimeError), s.begin_nested():
            p.add_line(s, "403", "Undone")
            raise RuntimeError("savepoint rolled back")
        p.add_line(s, "404", "Kept")
    assert version(sessions) == v0 + 1


def test_rolled_back_and_non_configuration_writes_do_not_bump(world):
    sessions = cli(world)
    v0 = version(sessions)
    with contextlib.suppress(RuntimeError), transaction(sessions) as s:
        p.add_line(s, "401", "Never")
        raise RuntimeError("rolled back")
    with transaction(sessions) as s:  # the desk's line choice is the distributor's state
        for link in s.scalars(select(m.AgentLine)):
            link.chosen = not link.chosen
        s.add(m.AuditLog(actor="test", action="nothing", target=""))
    assert version(sessions) == v0


def test_cli_line_changes_bump_and_say_that_the_dialplan_needs_installing(run):
    from asterisk_cube.cli.common import CliContext

    sessions = CliContext().sessions()
    v0 = version(sessions)
    out = run("line", "add", "4721000077", "--name", "New").output
    assert "run `asterisk-cube dialplan install`" in out
    assert version(sessions) == v0 + 1
    assert "dialplan install" in run("line", "remove", "4721000077").output
    assert version(sessions) == v0 + 2


# ------------------------------------------------------------------ the watcher


async def test_watcher_runs_every_reload_once_per_change_and_retries_a_failed_one(world):
    sessions = cli(world)
    watcher = ConfigWatcher(world[0].kw["bind"], interval=0.02)
    watcher.prime()
    seen: list[str] = []
    changed = asyncio.Event()
    failures = [RuntimeError("database away")]

    async def acd():
        if failures:
            raise failures.pop()
        seen.append("acd")
        changed.set()

    watcher.add("acd", acd)
    watcher.add("dialer", lambda: seen.append("dialer"))
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(0.1)
        assert seen == []  # nothing changed: nothing reloaded
        with transaction(sessions) as s:
            p.add_line(s, "402", "Watched")
        await asyncio.wait_for(changed.wait(), 5)
        # the first attempt failed (dialer reloaded, acd not): retried at the next check
        assert seen == ["dialer", "acd", "dialer"]
        await asyncio.sleep(0.1)
        assert len(seen) == 3 and watcher.changes == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ------------------------------------------------------------------ the distributor


async def test_a_grant_made_while_serving_is_taken_on_reload(world):
    """Before: ``choose_lines`` said 403 "not permitted to serve line N" until a restart."""
    _, ids, lines = world
    d = make(world)
    sessions = cli(world)
    with transaction(sessions) as s:
        new = p.add_line(s, "500", "New line", priority=3).id
        p.grant_lines(s, "ann", ["500"])
    await start_work(d, ids["ann"], [lines["100"]])
    with pytest.raises(c.Refused):
        await d.choose_lines(ids["ann"], [new])  # not reloaded yet
    call_id = d.call_arrived("ch-new", new, "+4791000009")
    await d.reload_config()
    await d.choose_lines(ids["ann"], [lines["100"], new])
    view = await d.view(ids["ann"])
    assert [ln.did for ln in view.lines if ln.chosen] == ["500", "100"]
    assert view.offer.call_id == call_id


async def test_a_changed_campaign_and_line_count_from_the_next_call(world):
    _, ids, lines = world
    d = make(world)
    with transaction(cli(world)) as s:
        p.update_campaign(s, "Hot", wrap_up=45, skill="vip")
        p.update_line(s, "100", priority=20, name="Low renamed")
        p.update_agent(s, "ann", add_skills=["vip"], endpoint="PJSIP/ann2")
    await d.reload_config()
    route = d.line_routes[lines["300"]]
    assert (route.wrap_up_seconds, route.skill) == (45, "vip")
    assert d.line_priorities[lines["100"]] == 20
    assert d.line_info[lines["100"]][1] == "Low renamed"
    ann = d.agents[ids["ann"]]
    assert ann.skills == {"vip"} and ann.endpoint == "PJSIP/ann2"


async def test_revoke_leaves_the_call_in_progress_and_the_choice(world):
    _, ids, lines = world
    tel = FakeTelephony()
    d = make(world, tel)
    await start_work(d, ids["ann"], [lines["100"], lines["200"]])
    call_id = d.call_arrived("ch1", lines["100"], "91000001")
    await d.accept(ids["ann"], call_id)
    await settle()
    with transaction(cli(world)) as s:
        p.revoke_lines(s, "ann", ["100"])
        p.update_agent(s, "ann", name="Ann Nordmann")
    await d.reload_config()
    view = await d.view(ids["ann"])
    assert view.call.call_id == call_id and view.call.state == "connected"
    assert view.name == "Ann Nordmann"
    assert [(ln.did, ln.chosen) for ln in view.lines] == [("200", True), ("300", False)]
    d.call_arrived("ch2", lines["100"], "91000002")
    d.caller_left("ch1")  # a service line: ready again at once
    view = await d.view(ids["ann"])
    assert view.state == "ready" and view.offer is None  # line 100 is no longer hers


async def test_a_removed_lines_waiting_callers_are_still_served(world):
    _, ids, lines = world
    d = make(world)
    waiting = d.call_arrived("ch1", lines["100"], "91000001")
    with transaction(cli(world)) as s:
        p.remove_line(s, "100")
    await d.reload_config()
    assert lines["100"] in d.line_routes  # kept while its caller waits
    await start_work(d, ids["bob"], [lines["100"]])
    assert (await d.view(ids["bob"])).offer.call_id == waiting
    d.caller_left("ch1")
    await d.reload_config()  # the next reload forgets it
    assert lines["100"] not in d.line_routes
    assert lines["100"] not in d.agents[ids["bob"]].permitted


async def test_new_and_removed_agents_and_pause_reasons(world):
    _, ids, lines = world
    tel = FakeTelephony()
    d = make(world, tel)
    await start_work(d, ids["bob"], [lines["100"]])
    await start_work(d, ids["cid"], [lines["200"]])
    call_id = d.call_arrived("ch1", lines["200"], "91000001")
    await d.accept(ids["cid"], call_id)
    await settle()
    with transaction(cli(world)) as s:
        p.add_agent(s, "dag", endpoint="PJSIP/dag", lines=["200"], skills=["sales"])
        p.remove_agent(s, "ann")  # logged out
        p.update_agent(s, "bob", active=False)  # ready, no call
        p.update_agent(s, "cid", active=False)  # on a call
        s.add(m.PauseReason(code="lunch2", label="Late lunch"))
    await d.reload_config()
    assert ids["ann"] not in d.agents and ids["bob"] not in d.agents
    dag = next(a for a in d.agents.values() if a.username == "dag")
    assert dag.permitted == {lines["200"]} and dag.skills == {"sales"}
    assert ("lunch2", "Late lunch") in (await d.view(dag.agent_id)).pause_reasons
    # cid keeps its call, gets nothing new, and is paused (not ready) after it
    cid = d.agents[ids["cid"]]
    assert cid.permitted == frozenset() and cid.skills == frozenset()
    assert (await d.view(ids["cid"])).call.state == "connected"
    d.caller_left("ch1")
    assert d.agents[ids["cid"]].status.state.value == "paused"
    await d.reload_config()
    assert ids["cid"] not in d.agents


def test_an_account_change_counts_at_the_next_request_after_a_reload(tmp_path):
    """Before: a desk session re-checked its account only every 30 s (RECHECK_SECONDS)."""
    import warnings

    from fakes.web import demo_for, make_accounts, make_app, make_settings

    from asterisk_cube.events import EventHub
    from asterisk_cube.web.auth import AgentDirectory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    sessions, ids = make_accounts(tmp_path)
    hub = EventHub()
    directory = AgentDirectory(sessions)
    app = make_app(make_settings(tmp_path), demo_for(hub, ids), hub, sessions, directory=directory)
    client = TestClient(app)
    resp = client.post("/api/login", json={"username": "nora", "password": "nora-secret-1"})
    assert resp.status_code == 200, resp.text
    assert client.get("/api/me").status_code == 200
    with transaction(cli_sessions(sessions)) as s:
        p.update_agent(s, "nora", active=False)
    directory.config_changed()  # what serve's watcher calls
    assert client.get("/api/me").status_code == 401


# ------------------------------------------------------------------ serve's wiring


def test_serve_watches_the_configuration_and_reloads_every_cache(tmp_path, monkeypatch):
    from asterisk_cube import wiring
    from asterisk_cube.config import load_settings
    from asterisk_cube.db.session import upgrade

    made: list[ConfigWatcher] = []

    class Recorder(ConfigWatcher):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(wiring, "ConfigWatcher", Recorder)
    settings = load_settings(env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path)})
    upgrade(settings.database_url)
    runtime = wiring.build_runtime(settings, install_signal_handlers=False)
    (watcher,) = made
    assert watcher.version is not None  # primed before the distributor loaded
    assert sorted(name for name, _ in watcher.reloads) == [
        "acd",
        "dialer",
        "entry",
        "recording",
        "web-auth",
        "webrtc",
    ]
    assert "config-watch" in runtime.extra_components
