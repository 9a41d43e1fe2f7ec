"""The answering-service part of the agent desktop (F-S1..F-S9): the client's script for the
agent's current call, forwarding (announce, then connect) and call notes.

Routes (JSON, behind the desktop's login; every POST needs the CSRF token)::

    GET  /api/calls/{call_id}/script            {"call_id", "script": script_view.script_data}
    POST /api/calls/{call_id}/forward           {employee_id: int | null}
    POST /api/calls/{call_id}/forward/connect
    POST /api/calls/{call_id}/forward/cancel
    POST /api/calls/{call_id}/note              {message, caller_name, callback_number,
                                                 employee_id: int | null}

The call must be the agent's own current call (its open card) and an answering-service call;
anything else is 404, whatever the id. The lookups are
:mod:`asterisk_cube.services.answering_desk`; this module reads the request and translates
the service's refusals. Employee ids and forward targets are never taken on
trust: the distributor looks the targets up in the client's configuration, and the note's
employee must belong to the call's client. The note's callback number is checked here
against the client's own numbers first, so the refusal names the field in the agent's
language (the distributor checks again: it is the one that stores).

The script's greeting and opening hours are what the agent *says*, so they come in the
client's language (``clients.language``); the labels around them follow the agent's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..acd.contract import ILLEGAL_STATE, NOT_FOUND, CallView, Refused
from ..core.hours import HoursWords
from ..core.script import DayPartWords
from ..services import answering_desk as svc
from . import i18n
from .auth import User, refusal
from .desk_host import DeskHost
from .i18n import N_
from .i18n import gettext as _
from .inputs import MAX_ID, BadInput, path_id, str_field
from .script_view import UnknownClient, client_script, script_data

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


MAX_MESSAGE = 10_000  # services.notes.MAX_MESSAGE
MAX_NAME = 200

CLOSED_HOURS = ("closed", "holiday")

#: services.answering_desk.NoteRefused codes as messages (msgids)
NOTE_MESSAGES = {
    "own_number": N_(
        "%(number)s is %(client)s's own number. Ask the caller for a "
        "number where they can be reached."
    ),
    "invalid_number": N_("is not a valid phone number"),
    "not_employee": N_("is not one of this client's employees"),
}


def optional_id(body: dict[str, Any], name: str) -> int | None:
    """``name`` as a positive id, or None when missing or null."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise BadInput(name, _("must be an id (a whole number) or null"))
    return value


def spoken_words(language: str) -> tuple[DayPartWords, HoursWords]:
    """The time-of-day greetings and the opening-hours wording in ``language`` (the client's:
    the agent says them to the caller)."""
    with i18n.use_language(i18n.normalize(language) or i18n.DEFAULT_LANGUAGE):
        words = DayPartWords(_("Good morning"), _("Good afternoon"), _("Good evening"))
        days = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))
        hours = HoursWords(day_names=days, closed=_("closed"))
    return words, hours


class Answering:
    """The answering-service routes of one :class:`~asterisk_cube.web.desktop.Desktop`."""

    def __init__(
        self,
        desktop: DeskHost,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.desktop = desktop
        self.desk = desktop.desk
        self.sessions = sessions
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    async def _my_client_call(self, user: User, call_id: int) -> tuple[CallView, int]:
        """The agent's current call if it is ``call_id`` and an answering-service call, and
        its client."""
        call = (await self.desk.view(user.agent_id)).call
        if call is None or call.call_id != call_id or call.client_id is None:
            raise Refused(NOT_FOUND, f"call {call_id} is not your answering-service call")
        return call, call.client_id

    # --- the script ----------------------------------------------------------------------

    def _script(self, client_id: int, agent_name: str) -> dict[str, Any]:
        with self.sessions() as s:
            day_words, hours_words = spoken_words(svc.client_language(s, client_id))
            script = client_script(
                s, client_id, self.clock(), words=day_words, agent_name=agent_name
            )
            return script_data(script, hours_words)

    async def script(self, request: Request, user: User) -> Response:
        call, client_id = await self._my_client_call(user, path_id(request, "call_id"))
        try:
            data = await run_in_threadpool(self._script, client_id, user.name)
        except (svc.NoClient, UnknownClient):
            raise Refused(NOT_FOUND, f"no client {client_id}") from None
        return JSONResponse({"call_id": call.call_id, "script": data})

    # --- forward -------------------------------------------------------------------------

    async def forward(self, request: Request, user: User, body: dict[str, Any]) -> Response | None:
        call_id = path_id(request, "call_id")
        employee_id = optional_id(body, "employee_id")
        call, _client = await self._my_client_call(user, call_id)
        if call.hours in CLOSED_HOURS:
            return refusal(
                request,
                ILLEGAL_STATE,
                409,
                detail="the client is closed",
                message=_(
                    "The client is closed: tell the caller the opening hours and take a note."
                ),
            )
        await self.desk.forward(user.agent_id, call_id, employee_id)
        return None

    async def forward_connect(
        self, request: Request, user: User, body: dict[str, Any]
    ) -> Response | None:
        call_id = path_id(request, "call_id")
        await self._my_client_call(user, call_id)
        await self.desk.forward_connect(user.agent_id, call_id)
        return None

    async def forward_cancel(
        self, request: Request, user: User, body: dict[str, Any]
    ) -> Response | None:
        call_id = path_id(request, "call_id")
        await self._my_client_call(user, call_id)
        await self.desk.forward_cancel(user.agent_id, call_id)
        return None

    # --- call note -----------------------------------------------------------------------

    def _check_note(self, client_id: int, callback: str, employee_id: int | None) -> None:
        """Refuse (naming the field) a callback number that is the client's own or not a
        phone number, and an employee of another client."""
        with self.sessions() as s:
            try:
                svc.check_note_input(s, client_id, callback, employee_id)
            except svc.NoClient:
                raise Refused(NOT_FOUND, f"no client {client_id}") from None
            except svc.NoteRefused as exc:
                message = NOTE_MESSAGES[exc.code]
                text = _(message) % exc.values if exc.values else _(message)
                raise BadInput(exc.field, text) from None

    async def note(self, request: Request, user: User, body: dict[str, Any]) -> Response | None:
        call_id = path_id(request, "call_id")
        message = str_field(body, "message", required=True, max_length=MAX_MESSAGE, multiline=True)
        caller_name = str_field(body, "caller_name", max_length=MAX_NAME)
        callback = str_field(body, "callback_number", max_length=40)
        employee_id = optional_id(body, "employee_id")
        _call, client_id = await self._my_client_call(user, call_id)
        await run_in_threadpool(self._check_note, client_id, callback, employee_id)
        await self.desk.take_note(
            user.agent_id, call_id, message, caller_name, callback, employee_id
        )
        return None

    # --- routes --------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        post = ["POST"]
        a = self.desktop.action
        return [
            Route("/api/calls/{call_id}/script", self.desktop.api(self.script), methods=["GET"]),
            Route("/api/calls/{call_id}/forward", a(self.forward), methods=post),
            Route("/api/calls/{call_id}/forward/connect", a(self.forward_connect), methods=post),
            Route("/api/calls/{call_id}/forward/cancel", a(self.forward_cancel), methods=post),
            Route("/api/calls/{call_id}/note", a(self.note), methods=post),
        ]
