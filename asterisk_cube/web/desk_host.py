"""What the desk's route groups (answering service, scheduled callbacks) need from the
desktop that mounts them: the agent command façade, the login/CSRF wrappers and the
agent's fresh view. A protocol, so those modules do not import :mod:`.desktop` (which
imports them): the web package has no import cycle (tests/unit/test_import_cycles.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from .auth import User

if TYPE_CHECKING:
    from ..acd.contract import AgentDesk

Api = Callable[[Request, User], Awaitable[Response]]
Action = Callable[[Request, User, dict[str, Any]], Awaitable[Any]]


class DeskHost(Protocol):
    """The parts of :class:`asterisk_cube.web.desktop.Desktop` its route groups use."""

    desk: AgentDesk

    def api(self, handler: Api, *, csrf: bool = True) -> Callable[[Request], Awaitable[Response]]:
        """Login + role + CSRF, then the handler."""
        ...

    def action(self, op: Action) -> Callable[[Request], Awaitable[Response]]:
        """A POST that calls the desk and answers with the fresh view."""
        ...

    async def view_payload(self, agent_id: int) -> dict[str, Any]:
        """The agent's desk view as JSON."""
        ...
