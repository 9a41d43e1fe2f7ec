"""Scheduled callbacks from the agent desktop (F-E6): the agent calls the contact of its
current outbound call back at an agreed time, with a comment, for itself or for all agents;
it sees its scheduled-calls view and cancels callbacks from it.

Routes (JSON, behind the desktop's login; every POST needs the CSRF token)::

    GET  /api/calls/{call_id}/callback      the form's facts: contact, campaign, its time
                                            zone and local time now, a pending callback
    POST /api/calls/{call_id}/callback      {due_at: "YYYY-MM-DDTHH:MM" in the campaign's
                                            zone, comment, for: "me" | "all", contact_id?}
    GET  /api/callbacks                     {callbacks: [...]}: the scheduled-calls view
    POST /api/callbacks/{callback_id}/cancel

Who may do what is decided from the session's agent, never from the request: the call must
be the one on the agent's card (``AgentDesk.view``) and its contact a contact of an outbound
campaign the agent works for (:func:`~asterisk_cube.acd.contact_scope.agent_campaign_ids`);
a ``contact_id`` in the body must be that contact. The agent sees and cancels its own
callbacks and those for all agents of its campaigns; any other id is 404, as if unknown.

The rules and the database are :mod:`asterisk_cube.dialer.desk_callbacks` (validate, then
one transaction, off the event loop); this module reads the request and translates the
service's refusals. While the dialer still holds the call (its contact is ``dialing``: the
call goes on, or its end is not written yet) the call's own outcome would overwrite the
callback, so it goes to the dialer (``Dialer.schedule_callback``), which writes it when
the call ends (answered with ``deferred: true``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..acd.contract import ILLEGAL_STATE, NOT_FOUND, CallView
from ..db import models as m
from ..db.session import transaction
from ..dialer import desk_callbacks as svc
from ..dialer.desk_callbacks import Asked, CallbackRefused
from .auth import STATUS_FOR_REASON, User, refusal
from .desk_host import DeskHost
from .i18n import N_
from .i18n import gettext as _
from .inputs import MAX_ID, BadInput, path_id, str_field

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


MAX_COMMENT = 4000  # dialer.callbacks.schedule's limit
DIALER_MODES = frozenset(mode.value for mode in m.DialMode)

#: the service's refusal codes, and the desk's own, as messages (msgids, ``N_``)
MESSAGES: dict[str, str] = {
    "skipped_time": N_("due_at: %(time)s does not exist in %(zone)s (the clocks change)"),
    "in_the_past": N_("due_at: is in the past"),
    "too_far_ahead": N_("due_at: is more than a year ahead"),
    "not_outbound": N_("Only a contact of an outbound campaign can be called back."),
    "not_your_campaign": N_("You do not work for the campaign %(campaign)s."),
    "after_the_call": N_("Schedule the callback when the call has ended."),
    "being_called": N_("The contact is being called right now: try again after the call."),
    "not_your_callback": N_("Callback %(id)s is not in your scheduled calls."),
    "not_cancellable": N_("This callback can no longer be cancelled: it is being called or done."),
    "not_on_card": N_("Call %(call)s is not on your call card."),
    "no_contact": N_("Open the contact of this call first: it has none."),
    "not_card_contact": N_("Contact %(contact)s is not the contact on your call card."),
    "not_answered": N_("Wait until the contact has answered."),
}


class CallFeedback(Protocol):
    """What the desk needs of the dialer (``asterisk_cube.dialer.service.Dialer``)."""

    def schedule_callback(
        self,
        agent_id: int,
        call_id: int,
        due_at: dt.datetime,
        *,
        for_me: bool = True,
        comment: str = "",
    ) -> None: ...


# --- the time as typed, pure ---------------------------------------------------------------


LOCAL_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"
)


def parse_local(text: str) -> dt.datetime:
    """``YYYY-MM-DDTHH:MM`` (what a datetime-local input sends; seconds and an offset
    allowed) as the agent typed it."""
    try:
        if not LOCAL_TIME.fullmatch(text):
            raise ValueError(text)
        when = dt.datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00"))
        if not 1970 <= when.year <= 9000:  # converting zones near year 1 or 9999 overflows
            raise ValueError(text)
        return when
    except ValueError:
        raise BadInput("due_at", _("is not a date and time (YYYY-MM-DD HH:MM)")) from None


# --- the resource --------------------------------------------------------------------------


class Callbacks:
    """The scheduled-callback routes of one :class:`~asterisk_cube.web.desktop.Desktop`."""

    def __init__(
        self,
        desktop: DeskHost,
        sessions: sessionmaker[Session],
        *,
        feedback: CallFeedback | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.desktop = desktop
        self.desk = desktop.desk
        self.sessions = sessions
        self.feedback = feedback
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def refused(self, request: Request, exc: CallbackRefused) -> JSONResponse:
        message = MESSAGES[exc.code]
        english = message % exc.values if exc.values else message
        text = _(message) % exc.values if exc.values else _(message)
        return refusal(
            request,
            exc.reason,
            STATUS_FOR_REASON[exc.reason],
            detail=exc.detail or english,
            field=exc.field,
            message=text,
        )

    async def _my_card(self, user: User, call_id: int) -> tuple[CallView, int]:
        """The call on the agent's card if it is ``call_id``, and its contact."""
        call = (await self.desk.view(user.agent_id)).call
        if call is None or call.call_id != call_id:
            raise CallbackRefused(NOT_FOUND, "not_on_card", call=call_id)
        if call.contact_id is None:
            raise CallbackRefused(ILLEGAL_STATE, "no_contact")
        return call, call.contact_id

    # --- the database step (in a worker thread, one transaction) -------------------------

    def _facts(self, agent_id: int, contact_id: int) -> dict[str, Any]:
        with transaction(self.sessions) as s:
            return svc.callback_facts(s, agent_id, contact_id, self.clock())

    def _schedule(
        self, agent_id: int, contact_id: int, ask: Asked, *, dialer_call: bool
    ) -> tuple[dict[str, Any], bool]:
        with transaction(self.sessions) as s:
            return svc.schedule_callback(
                s,
                agent_id,
                contact_id,
                ask,
                self.clock(),
                dialer_call=dialer_call,
                can_defer=self.feedback is not None,
            )

    def _list(self, agent_id: int) -> dict[str, Any]:
        with transaction(self.sessions) as s:
            return svc.scheduled_view(s, agent_id, self.clock())

    def _cancel(self, agent_id: int, callback_id: int) -> None:
        with transaction(self.sessions) as s:
            svc.cancel_callback(s, agent_id, callback_id, self.clock())

    # --- handlers ----------------------------------------------------------------------

    async def facts(self, request: Request, user: User) -> Response:
        call_id = path_id(request, "call_id")
        try:
            card, contact_id = await self._my_card(user, call_id)
            data = await run_in_threadpool(self._facts, user.agent_id, contact_id)
        except CallbackRefused as exc:
            return self.refused(request, exc)
        data["call_id"] = call_id
        data["deferred"] = _dialer_call(card) and data.pop("dialing")
        return JSONResponse(data)

    async def schedule(self, request: Request, user: User, body: dict[str, Any]) -> Response:
        call_id = path_id(request, "call_id")
        ask = _read_body(body)
        try:
            card, contact_id = await self._my_card(user, call_id)
            if ask.contact_id is not None and ask.contact_id != contact_id:
                raise CallbackRefused(
                    NOT_FOUND, "not_card_contact", "contact_id", contact=ask.contact_id
                )
            if card.state == "connecting":
                raise CallbackRefused(ILLEGAL_STATE, "not_answered")
            out, deferred = await run_in_threadpool(
                self._schedule,
                user.agent_id,
                contact_id,
                ask,
                dialer_call=_dialer_call(card),
            )
        except CallbackRefused as exc:
            return self.refused(request, exc)
        if deferred:
            assert self.feedback is not None  # the service defers only to a dialer
            # the dialer writes it when the call ends, or now if it just ended (it refuses
            # a call that is not the agent's)
            self.feedback.schedule_callback(
                user.agent_id, call_id, out["due_at"], for_me=ask.for_me, comment=ask.comment
            )
        out["due_at"] = svc.iso(out["due_at"])
        view = await self.desktop.view_payload(user.agent_id)
        return JSONResponse({"ok": True, "deferred": deferred, "callback": out, "view": view})

    async def listing(self, request: Request, user: User) -> Response:
        return JSONResponse(await run_in_threadpool(self._list, user.agent_id))

    async def cancel(self, request: Request, user: User, body: dict[str, Any]) -> Response:
        callback_id = path_id(request, "callback_id")
        try:
            await run_in_threadpool(self._cancel, user.agent_id, callback_id)
        except CallbackRefused as exc:
            return self.refused(request, exc)
        data = await run_in_threadpool(self._list, user.agent_id)
        view = await self.desktop.view_payload(user.agent_id)
        return JSONResponse({"ok": True, **data, "view": view})

    # --- routes ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        api, action = self.desktop.api, self.desktop.action
        return [
            Route("/api/calls/{call_id}/callback", api(self.facts), methods=["GET"]),
            Route("/api/calls/{call_id}/callback", action(self.schedule), methods=["POST"]),
            Route("/api/callbacks", api(self.listing), methods=["GET"]),
            Route("/api/callbacks/{callback_id}/cancel", action(self.cancel), methods=["POST"]),
        ]


# --- helpers -------------------------------------------------------------------------------


def _read_body(body: dict[str, Any]) -> Asked:
    """The body, strictly: every problem names its field before anything is looked up."""
    text = str_field(body, "due_at", required=True, max_length=40)
    when = parse_local(text)
    comment = str_field(body, "comment", max_length=MAX_COMMENT, multiline=True)
    target = body.get("for", "me")
    if target not in ("me", "all"):
        raise BadInput("for", _('must be "me" or "all"'))
    claimed = body.get("contact_id")
    if claimed is not None and (
        isinstance(claimed, bool) or not isinstance(claimed, int) or not 0 < claimed <= MAX_ID
    ):
        raise BadInput("contact_id", _("must be an id (a whole number) or null"))
    return Asked(when, comment, target == "me", claimed)


def _dialer_call(card: CallView) -> bool:
    """A call the dialer made (preview, power, predictive): it writes its contact's outcome."""
    return card.kind in DIALER_MODES
