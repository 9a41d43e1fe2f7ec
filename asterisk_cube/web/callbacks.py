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

Writing reuses :mod:`asterisk_cube.dialer.callbacks` (validate, then one transaction, off
the event loop). While the dialer still holds the call (its contact is ``dialing``: the
call goes on, or its end is not written yet) the call's own outcome would overwrite the
callback, so it goes to the dialer (``Dialer.schedule_callback``), which writes it when
the call ends (answered with ``deferred: true``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..acd.contact_scope import agent_campaign_ids
from ..acd.contract import ILLEGAL_STATE, INVALID, NOT_FOUND, NOT_PERMITTED, CallView
from ..db import models as m
from ..db.session import transaction
from ..dialer import callbacks as cb
from ..dialer.claims import PENDING_CALLBACK
from .auth import User, refusal
from .desk_host import DeskHost
from .i18n import N_
from .i18n import gettext as _
from .inputs import MAX_ID, BadInput, path_id, str_field

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


MAX_COMMENT = 4000  # dialer.callbacks.schedule's limit
MAX_AHEAD = dt.timedelta(days=366)
DONE_SHOWN = dt.timedelta(days=7)  # delivered / cancelled ones stay in the view this long
MAX_DONE = 20
DONE_STATES = ("delivered", "cancelled")
DIALER_MODES = frozenset(mode.value for mode in m.DialMode)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


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


class Refusal(Exception):
    """A refusal found in the database step; ``message`` is a msgid (``N_``) translated
    in the request's language with ``values``."""

    def __init__(
        self,
        reason: str,
        status: int,
        message: str,
        field: str | None = None,
        *,
        detail: str = "",
        **values: Any,
    ) -> None:
        super().__init__(detail or (message % values if values else message))
        self.reason, self.status, self.message = reason, status, message
        self.field, self.values = field, values


# --- the time, pure ------------------------------------------------------------------------


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


def due_in_zone(when: dt.datetime, zone: str, now: dt.datetime) -> dt.datetime:
    """``when`` (local time of ``zone`` unless it has an offset) in UTC, checked: a local
    time the clocks skip, a time in the past or more than a year ahead is refused."""
    tz = ZoneInfo(zone)
    if when.tzinfo is None:
        aware = when.replace(tzinfo=tz)
        back = aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
        if back != when:  # e.g. 02:30 when the clocks go from 02:00 to 03:00
            raise Refusal(
                INVALID,
                400,
                N_("due_at: %(time)s does not exist in %(zone)s (the clocks change)"),
                "due_at",
                time=when.strftime("%Y-%m-%d %H:%M"),
                zone=zone,
            )
        when = aware
    due = when.astimezone(dt.UTC)
    if due <= now:
        raise Refusal(INVALID, 400, N_("due_at: is in the past"), "due_at")
    if due > now + MAX_AHEAD:
        raise Refusal(INVALID, 400, N_("due_at: is more than a year ahead"), "due_at")
    return due


def local_text(value: dt.datetime | None, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") if value else ""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class Asked:
    """A callback as the agent asked for it (the body, validated)."""

    when: dt.datetime
    comment: str
    for_me: bool
    contact_id: int | None  # the contact the desk shows, if it says


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

    def refused(self, request: Request, exc: Refusal) -> JSONResponse:
        text = _(exc.message) % exc.values if exc.values else _(exc.message)
        return refusal(
            request, exc.reason, exc.status, detail=str(exc), field=exc.field, message=text
        )

    async def _my_card(self, user: User, call_id: int) -> tuple[CallView, int]:
        """The call on the agent's card if it is ``call_id``, and its contact."""
        call = (await self.desk.view(user.agent_id)).call
        if call is None or call.call_id != call_id:
            raise Refusal(
                NOT_FOUND, 404, N_("Call %(call)s is not on your call card."), call=call_id
            )
        if call.contact_id is None:
            raise Refusal(
                ILLEGAL_STATE, 409, N_("Open the contact of this call first: it has none.")
            )
        return call, call.contact_id

    # --- the database step (in a worker thread, one transaction) -------------------------

    def _contact(self, s: Session, agent_id: int, contact_id: int) -> tuple[m.Contact, m.Campaign]:
        contact = s.get(m.Contact, contact_id)
        campaign = (
            s.get(m.Campaign, contact.campaign_id) if contact and contact.campaign_id else None
        )
        if contact is None or campaign is None or campaign.direction != m.Direction.OUTBOUND:
            raise Refusal(
                ILLEGAL_STATE,
                409,
                N_("Only a contact of an outbound campaign can be called back."),
            )
        if campaign.id not in agent_campaign_ids(s, agent_id):
            raise Refusal(
                NOT_PERMITTED,
                403,
                N_("You do not work for the campaign %(campaign)s."),
                campaign=campaign.name,
            )
        return contact, campaign

    def _facts(self, agent_id: int, contact_id: int) -> dict[str, Any]:
        with transaction(self.sessions) as s:
            contact, campaign = self._contact(s, agent_id, contact_id)
            pending = s.scalar(
                select(m.ScheduledCallback)
                .where(
                    m.ScheduledCallback.contact_id == contact.id,
                    m.ScheduledCallback.status.in_(PENDING_CALLBACK),
                )
                .order_by(m.ScheduledCallback.id.desc())
                .limit(1)
            )
            zone = campaign.timezone
            return {
                "contact_id": contact.id,
                "name": contact.name or "",
                "phone": contact.phone,
                "campaign": campaign.name,
                "timezone": zone,
                "now_local": self.clock().astimezone(ZoneInfo(zone)).strftime(LOCAL_FORMAT),
                "reservation_minutes": campaign.callback_reservation_minutes,
                "dialing": contact.status == m.ContactStatus.DIALING,
                "pending": None
                if pending is None
                else {
                    "id": pending.id,
                    "due_local": local_text(pending.due_at, zone),
                    "for": _for(pending.agent_id, agent_id),
                    "comment": pending.comment or "",
                },
            }

    def _schedule(
        self, agent_id: int, contact_id: int, ask: Asked, *, dialer_call: bool
    ) -> tuple[dict[str, Any], bool]:
        """Check everything, then write the callback, unless the dialer still holds the
        call (``deferred``: the due time is only checked here)."""
        with transaction(self.sessions) as s:
            contact, campaign = self._contact(s, agent_id, contact_id)
            now = self.clock()
            due = due_in_zone(ask.when, campaign.timezone, now)
            deferred = dialer_call and contact.status == m.ContactStatus.DIALING
            if deferred and self.feedback is None:
                raise Refusal(
                    ILLEGAL_STATE, 409, N_("Schedule the callback when the call has ended.")
                )
            out = {
                "id": None,
                "due_at": due,
                "due_local": local_text(due, campaign.timezone),
                "timezone": campaign.timezone,
                "campaign": campaign.name,
                "contact_id": contact.id,
                "for": "me" if ask.for_me else "all",
                "comment": ask.comment,
            }
            if not deferred:
                try:
                    row = cb.schedule(
                        s,
                        contact.id,
                        due,
                        agent_id=agent_id if ask.for_me else None,
                        comment=ask.comment,
                        created_by=agent_id,
                        now=now,
                    )
                except cb.CallbackError as exc:
                    raise Refusal(
                        ILLEGAL_STATE,
                        409,
                        N_("The contact is being called right now: try again after the call."),
                        detail=str(exc),
                    ) from None
                out["id"] = row.id
            return out, deferred

    def _list(self, agent_id: int) -> dict[str, Any]:
        """Pending ones soonest first, then the last delivered / cancelled ones."""
        with transaction(self.sessions) as s:
            now = self.clock()
            mine = agent_campaign_ids(s, agent_id)
            rows = cb.scheduled_calls(
                s,
                agent_id=agent_id,
                campaign_ids=mine,
                include_done=True,
                done_since=now - DONE_SHOWN,
                now=now,
            )
        pending = [r for r in rows if r["state"] not in DONE_STATES]
        done = [r for r in reversed(rows) if r["state"] in DONE_STATES][:MAX_DONE]
        return {
            "callbacks": [_row(r, agent_id) for r in pending + done],
            "campaigns": len(mine),
        }

    def _cancel(self, agent_id: int, callback_id: int) -> None:
        with transaction(self.sessions) as s:
            row = s.get(m.ScheduledCallback, callback_id)
            mine = row is not None and (
                row.agent_id == agent_id
                or (row.agent_id is None and row.campaign_id in agent_campaign_ids(s, agent_id))
            )
            if not mine:
                raise Refusal(
                    NOT_FOUND,
                    404,
                    N_("Callback %(id)s is not in your scheduled calls."),
                    id=callback_id,
                )
            try:
                cb.cancel(s, callback_id, now=self.clock())
            except cb.CallbackError as exc:
                raise Refusal(
                    ILLEGAL_STATE,
                    409,
                    N_("This callback can no longer be cancelled: it is being called or done."),
                    detail=str(exc),
                ) from None

    # --- handlers ----------------------------------------------------------------------

    async def facts(self, request: Request, user: User) -> Response:
        call_id = path_id(request, "call_id")
        try:
            card, contact_id = await self._my_card(user, call_id)
            data = await run_in_threadpool(self._facts, user.agent_id, contact_id)
        except Refusal as exc:
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
                raise Refusal(
                    NOT_FOUND,
                    404,
                    N_("Contact %(contact)s is not the contact on your call card."),
                    "contact_id",
                    contact=ask.contact_id,
                )
            if card.state == "connecting":
                raise Refusal(ILLEGAL_STATE, 409, N_("Wait until the contact has answered."))
            out, deferred = await run_in_threadpool(
                self._schedule,
                user.agent_id,
                contact_id,
                ask,
                dialer_call=_dialer_call(card),
            )
        except Refusal as exc:
            return self.refused(request, exc)
        if deferred:
            assert self.feedback is not None  # _schedule defers only to a dialer
            # the dialer writes it when the call ends, or now if it just ended (it refuses
            # a call that is not the agent's)
            self.feedback.schedule_callback(
                user.agent_id, call_id, out["due_at"], for_me=ask.for_me, comment=ask.comment
            )
        out["due_at"] = _iso(out["due_at"])
        view = await self.desktop.view_payload(user.agent_id)
        return JSONResponse({"ok": True, "deferred": deferred, "callback": out, "view": view})

    async def listing(self, request: Request, user: User) -> Response:
        return JSONResponse(await run_in_threadpool(self._list, user.agent_id))

    async def cancel(self, request: Request, user: User, body: dict[str, Any]) -> Response:
        callback_id = path_id(request, "callback_id")
        try:
            await run_in_threadpool(self._cancel, user.agent_id, callback_id)
        except Refusal as exc:
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


def _for(agent_id: int | None, me: int) -> str:
    return "all" if agent_id is None else "me" if agent_id == me else "other"


def _row(row: dict[str, Any], me: int) -> dict[str, Any]:
    zone = row["timezone"]
    return {
        "id": row["id"],
        "state": row["state"],
        "due_at": _iso(row["due_at"]),
        "due_local": local_text(row["due_at"], zone),
        "timezone": zone,
        "campaign": row["campaign"],
        "contact_id": row["contact_id"],
        "phone": row["phone"],
        "name": row["name"],
        "for": _for(row["agent_id"], me),
        "comment": row["comment"],
        "reserved_until": _iso(row["reserved_until"]),
        "delivered_at": _iso(row["delivered_at"]),
        "cancellable": row["state"] not in DONE_STATES,
    }
