# ruff: noqa: F811 - pytest fixtures are parameters named like the imported fixture
"""The recorder reads a line's (campaign's) recording policy once, not for every bridged
call, and a policy set with the CLI applies from the next bridged call: recording policies
are configuration (``db.config_version``) and serve's watcher empties the recorder's
policies (issue #19)."""

from __future__ import annotations

from sqlalchemy import event, select
from test_cli import run  # noqa: F401 (fixture)

from asterisk_cube.audio.recorder import Recorder
from asterisk_cube.db import models as m
from asterisk_cube.db.config_version import ConfigWatcher


class Client:
    """The ARI client's recording request, counted."""

    def __init__(self) -> None:
        self.recorded: list[str] = []
        self.bridges = self

    async def record(self, bridgeId: str, **kwargs) -> None:
        self.recorded.append(bridgeId)


def count_policy_reads(engine) -> list[str]:
    seen: list[str] = []

    def before(conn, cursor, statement, params, context, executemany):
        if "recording_polic" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    return seen


async def bridge(recorder: Recorder, call_id: int, line_id: int) -> str:
    recorder.bridged(call_id, f"cube-call-{call_id}", line_id, None)
    call = recorder.calls[call_id]
    await call.ready.wait()
    for task in list(recorder._tasks):
        await task
    assert call.policy is not None
    return call.policy.mode


async def test_the_policy_is_read_once_and_a_cli_change_applies_from_the_next_call(run):
    from asterisk_cube.cli.common import CliContext

    run("line", "add", "4721000001")
    run("recording", "set", "--line", "4721000001", "--mode", "all")
    sessions = CliContext().sessions()
    with sessions() as s:
        line = s.scalars(select(m.Line.id)).one()
    client = Client()
    recorder = Recorder(sessions, lambda: client)
    watcher = ConfigWatcher(sessions.kw["bind"])  # as serve wires it (asterisk_cube/wiring)
    watcher.prime()
    watcher.add("recording", recorder.forget_policies)
    reads = count_policy_reads(sessions.kw["bind"])

    assert await bridge(recorder, 1, line) == "all"
    assert await bridge(recorder, 2, line) == "all"
    assert len(reads) == 1  # the second call: no read
    assert client.recorded == ["cube-call-1", "cube-call-2"]

    run("recording", "set", "--line", "4721000001", "--mode", "off")
    assert await watcher.check()  # a policy is configuration: the version moved
    assert await bridge(recorder, 3, line) == "off"
    assert len(reads) == 2
    assert client.recorded == ["cube-call-1", "cube-call-2"]  # call 3 not recorded
