"""One-shot AMI commands (``dialplan install`` reloads the dialplan with them)."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import pytest

from asterisk_cube.ami import commands
from asterisk_cube.config import AmiSettings


class FastManager:
    """panoramisk's contract as ``_command`` uses it, with an Asterisk that answers the
    Login at once: ``connection_made`` sends Login, the reply is handled by ``login``
    (which clears ``authenticated_future``) before the caller of ``connect()`` resumes."""

    def __init__(self, *, loop, accept=True, **_config):
        self.loop = loop
        self.accept = accept
        self.authenticated_future = None
        self.log = SimpleNamespace(disabled=False)
        self.closed = False

    def connect(self):
        connected = self.loop.create_future()
        connected.add_done_callback(self.connection_made)
        connected.set_result(None)
        return connected

    def connection_made(self, _connected):
        self.authenticated_future = self.loop.create_future()
        self.authenticated_future.add_done_callback(self.login)
        self.authenticated_future.set_result(SimpleNamespace(success=self.accept))

    def login(self, reply):
        self.authenticated_future = None
        return bool(reply.result().success)

    async def send_command(self, command):
        return {"Response": "Success", "Output": [f"ran {command}"]}

    def close(self):
        self.closed = True


def test_a_login_answered_at_once_is_not_missed(monkeypatch):
    """Before: ``wait_for(manager.authenticated_future)`` found None and raised TypeError
    ("An asyncio.Future, a coroutine or an awaitable is required")."""
    monkeypatch.setattr(commands, "Manager", FastManager)
    ami = AmiSettings(host="127.0.0.1", port=1)
    assert commands.run_command(ami, "dialplan reload") == "ran dialplan reload"


def test_a_refused_login_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(commands, "Manager", lambda **kw: FastManager(accept=False, **kw))
    refused = re.escape("AMI login to 127.0.0.1:1 as 'asterisk-cube' refused")
    with pytest.raises(commands.AmiError, match=refused):
        commands.run_command(AmiSettings(host="127.0.0.1", port=1), "dialplan reload")


def test_nothing_listening_is_a_one_line_error():
    async def free_port() -> int:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return port

    port = asyncio.run(free_port())
    with pytest.raises(commands.AmiError, match=f"cannot reach AMI at 127.0.0.1:{port}"):
        commands.run_command(AmiSettings(host="127.0.0.1", port=port), "x", timeout=2)
