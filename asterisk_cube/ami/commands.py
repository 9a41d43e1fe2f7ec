"""One-shot AMI commands (CLI use): log in, run an Asterisk CLI command, log off."""

from __future__ import annotations

import asyncio

from panoramisk import Manager

from asterisk_cube.config import AmiSettings


class AmiError(RuntimeError):
    pass


async def _command(ami: AmiSettings, command: str, timeout: float) -> str:
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
    try:
        try:
            await asyncio.wait_for(manager.connect(), timeout)
        except (OSError, TimeoutError) as exc:
            raise AmiError(
                f"cannot reach AMI at {ami.host}:{ami.port}: {exc or 'timeout'}"
            ) from None
        await asyncio.sleep(0)  # let panoramisk send the Login action
        login = await asyncio.wait_for(manager.authenticated_future, timeout)
        if not login.success:
            raise AmiError(f"AMI login to {ami.host}:{ami.port} as {ami.username!r} refused")
        reply = await asyncio.wait_for(manager.send_command(command), timeout)
        if isinstance(reply, list):
            reply = reply[0]
        if reply.get("Response") == "Error":
            raise AmiError(f"AMI refused {command!r}: {reply.get('Message')}")
        output = reply.get("Output") or reply.content or ""
        return "\n".join(output) if isinstance(output, list) else output
    finally:
        manager.close()


def run_command(ami: AmiSettings, command: str, timeout: float = 10.0) -> str:
    """Run an Asterisk CLI command over AMI and return its output."""
    return asyncio.run(_command(ami, command, timeout))
