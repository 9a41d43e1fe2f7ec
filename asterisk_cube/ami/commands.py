"""One-shot AMI commands (CLI use): log in, run an Asterisk CLI command, log off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from panoramisk import Manager

from asterisk_cube.config import AmiSettings


class AmiError(RuntimeError):
    pass


class AmiUnreachable(AmiError):
    """No AMI answered at the configured address in time (``reason``: why)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class AmiRefused(AmiError):
    """AMI answered and refused the login."""


@contextlib.asynccontextmanager
async def ami_session(ami: AmiSettings, timeout: float) -> AsyncIterator[Manager]:
    """A logged-in one-shot AMI connection (no events, no reconnect), closed on exit.

    Raises :class:`AmiUnreachable` or :class:`AmiRefused`."""
    manager = Manager(
        loop=asyncio.get_running_loop(),
        host=ami.host,
        port=ami.port,
        username=ami.username,
        secret=ami.secret,
        events="off",
        ping_delay=3600,
        reconnect_timeout=3600,
    )
    manager.log.disabled = True
    # panoramisk sends Login when connected and calls ``manager.login`` with the reply, which
    # clears ``authenticated_future``: a fast reply (a loaded machine) cleared it before we
    # looked, and ``wait_for(None)`` raised TypeError. Hear the reply from ``login`` itself.
    logged_in: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    panoramisk_login = manager.login

    def login(reply: asyncio.Future) -> bool:
        try:
            ok = panoramisk_login(reply)
        except Exception as exc:
            if not logged_in.done():
                logged_in.set_exception(exc)
            raise
        if not logged_in.done():
            logged_in.set_result(ok)
        return ok

    manager.login = login
    try:
        try:
            await asyncio.wait_for(manager.connect(), timeout)
            ok = await asyncio.wait_for(logged_in, timeout)
        except (OSError, TimeoutError) as exc:
            reason = str(exc) or "timeout"
            raise AmiUnreachable(
                f"cannot reach AMI at {ami.host}:{ami.port}: {reason}", reason
            ) from None
        if not ok:
            raise AmiRefused(f"AMI login to {ami.host}:{ami.port} as {ami.username!r} refused")
        yield manager
    finally:
        manager.close()


async def command_reply(manager: Manager, command: str, timeout: float) -> tuple[bool, str]:
    """Run an Asterisk CLI command: (accepted, its output; the message when refused)."""
    reply = await asyncio.wait_for(manager.send_command(command), timeout)
    if isinstance(reply, list):
        reply = reply[0]
    if reply.get("Response") == "Error":
        return False, str(reply.get("Message") or "")
    output = reply.get("Output") or reply.content or ""
    return True, "\n".join(output) if isinstance(output, list) else output


async def _command(ami: AmiSettings, command: str, timeout: float) -> str:
    async with ami_session(ami, timeout) as manager:
        accepted, output = await command_reply(manager, command, timeout)
    if not accepted:
        raise AmiError(f"AMI refused {command!r}: {output}")
    return output


def run_command(ami: AmiSettings, command: str, timeout: float = 10.0) -> str:
    """Run an Asterisk CLI command over AMI and return its output."""
    return asyncio.run(_command(ami, command, timeout))
