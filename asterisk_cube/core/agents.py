"""Agent state machine (F-D5) and the time-per-state report built from its log.

Routing, the dialer and the desktop all act on one agent state, so every
change goes through :func:`transition`: ``(status, event, now) -> Transition``
or :class:`IllegalTransition` with a reason key. Each accepted event yields a
:class:`StateLogRecord` that the adapter stores; :func:`time_in_states` turns
those records into seconds per state per local day for reports (F-M2).

States::

    logged_out --login--> ready --offer--> offered --accept--> busy --call_ended--> wrap_up
                 ready <--decline/withdrawn-- offered --timeout--> paused(no_answer)
    wrap_up --expired / finish_wrap_up--> ready   (or the pause requested meanwhile)
    wrap_up --make_ready--> ready
    ready/paused --pause--> paused(reason);  paused --make_ready--> ready

Design choices:

- Pausing while busy or in wrap-up does not cut the wrap-up short: it sets
  ``pause_requested`` and the agent goes to that pause when wrap-up ends. The
  dialer never dials for an agent in wrap-up, so a pause requested there
  cannot strand a dialed contact (seed 002's advice, made the default).
- ``WrapUpExpired`` is checked against ``wrap_up_until``: a timer that fires
  after the agent extended its wrap-up is rejected (``wrap_up_not_over``).
- ``idle_since`` (for "idle longest" routing) restarts whenever the agent
  becomes ready, except when an offer was declined or withdrawn: an offer the
  agent never worked on does not send it to the back of the line.
- Log ``reason``: the pause reason code for transitions into ``paused``,
  otherwise the event's name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from .hours import wall_to_aware


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    OFFERED = "offered"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class PauseReason(StrEnum):
    """Built-in pause codes; admins may add more (any string code is accepted)."""

    ADMIN = "admin"
    BREAK = "break"
    TRAINING = "training"
    LUNCH = "lunch"
    NO_ANSWER = "no_answer"  # set by the system after an offer was not accepted in time
    OTHER = "other"


class RejectReason(StrEnum):
    NOT_LOGGED_IN = "not_logged_in"
    ALREADY_LOGGED_IN = "already_logged_in"
    ALREADY_READY = "already_ready"
    NOT_AVAILABLE = "not_available"  # an offer or call to an agent that is not ready
    OFFER_PENDING = "offer_pending"
    NO_OFFER = "no_offer"
    ON_A_CALL = "on_a_call"
    NOT_ON_A_CALL = "not_on_a_call"
    NOT_IN_WRAP_UP = "not_in_wrap_up"
    WRAP_UP_NOT_OVER = "wrap_up_not_over"
    NO_PAUSE_REQUESTED = "no_pause_requested"
    INVALID_ARGUMENT = "invalid_argument"


@dataclass(frozen=True)
class AgentStatus:
    """An agent's current state; mirrors the ``agent_status`` row the adapter persists."""

    agent_id: int
    state: AgentState = AgentState.LOGGED_OUT
    since: datetime | None = None
    pause_reason: str | None = None
    pause_requested: str | None = None
    wrap_up_until: datetime | None = None
    call_id: int | str | None = None
    idle_since: datetime | None = None

    @property
    def is_ready(self) -> bool:
        return self.state is AgentState.READY

    @property
    def logged_in(self) -> bool:
        return self.state is not AgentState.LOGGED_OUT

    def wrap_up_left(self, now: datetime) -> timedelta:
        if self.state is not AgentState.WRAP_UP or self.wrap_up_until is None:
            return timedelta(0)
        return max(self.wrap_up_until - now, timedelta(0))


# ---------------------------------------------------------------------- events


@dataclass(frozen=True)
class Login:
    paused: str | None = None  # start paused with this reason instead of ready


@dataclass(frozen=True)
class Logout:
    forced: bool = False  # a supervisor may log out an agent on a call or with an offer


@dataclass(frozen=True)
class MakeReady:
    pass


@dataclass(frozen=True)
class Pause:
    reason: str = PauseReason.OTHER


@dataclass(frozen=True)
class CancelPauseRequest:
    pass


@dataclass(frozen=True)
class Offer:
    call_id: int | str


@dataclass(frozen=True)
class Accept:
    pass


@dataclass(frozen=True)
class Decline:
    pass


@dataclass(frozen=True)
class OfferTimeout:
    pass


@dataclass(frozen=True)
class OfferWithdrawn:
    pass


@dataclass(frozen=True)
class CallStarted:
    """A call not offered through the queue: predictive connect, preview, manual or missed-call
    callback. From ``paused`` the agent returns to that pause after the call."""

    call_id: int | str | None = None


@dataclass(frozen=True)
class CallEnded:
    wrap_up: timedelta = timedelta(0)  # the campaign's default wrap-up time


@dataclass(frozen=True)
class ExtendWrapUp:
    by: timedelta


@dataclass(frozen=True)
class WrapUpExpired:
    pass


@dataclass(frozen=True)
class FinishWrapUp:
    """The agent ends its wrap-up early (the desk's Finish button). Only legal in wrap-up:
    it never makes a paused agent ready. Like the wrap-up's end, it leads to the pause
    requested meanwhile, or to ready."""


Event = (
    Login
    | Logout
    | MakeReady
    | Pause
    | CancelPauseRequest
    | Offer
    | Accept
    | Decline
    | OfferTimeout
    | OfferWithdrawn
    | CallStarted
    | CallEnded
    | ExtendWrapUp
    | WrapUpExpired
    | FinishWrapUp
)

_EVENT_NAMES = {
    Login: "login",
    Logout: "logout",
    MakeReady: "ready",
    Pause: "pause",
    CancelPauseRequest: "cancel_pause_request",
    Offer: "offer",
    Accept: "accept",
    Decline: "decline",
    OfferTimeout: "offer_timeout",
    OfferWithdrawn: "offer_withdrawn",
    CallStarted: "call_started",
    CallEnded: "call_ended",
    ExtendWrapUp: "extend_wrap_up",
    WrapUpExpired: "wrap_up_expired",
    FinishWrapUp: "finish_wrap_up",
}


def event_name(event: Event) -> str:
    return _EVENT_NAMES[type(event)]


@dataclass(frozen=True)
class StateLogRecord:
    """One accepted transition, as stored in ``agent_state_log``."""

    agent_id: int
    at: datetime
    from_state: AgentState
    to_state: AgentState
    reason: str | None = None


@dataclass(frozen=True)
class Transition:
    status: AgentStatus
    record: StateLogRecord


class IllegalTransition(ValueError):
    """An event that does not apply in the agent's state; ``reason`` is a translatable key."""

    def __init__(self, status: AgentStatus, event: Event, reason: RejectReason):
        self.status = status
        self.event = event
        self.reason = reason
        super().__init__(
            f"agent {status.agent_id}: {event_name(event)} not allowed in {status.state}: {reason}"
        )


# ----------------------------------------------------------------- transition


def _ready(status: AgentStatus, now: datetime, *, keep_idle: bool = False) -> AgentStatus:
    return AgentStatus(
        status.agent_id,
        AgentState.READY,
        now,
        idle_since=status.idle_since if keep_idle and status.idle_since else now,
    )


def _paused(status: AgentStatus, reason: str, now: datetime) -> AgentStatus:
    return AgentStatus(status.agent_id, AgentState.PAUSED, now, pause_reason=reason)


def _after_work(status: AgentStatus, now: datetime) -> AgentStatus:
    """Where an agent goes when its work ends: the requested pause, or ready."""
    if status.pause_requested:
        return _paused(status, status.pause_requested, now)
    return _ready(status, now)


def _next(status: AgentStatus, event: Event, now: datetime) -> AgentStatus:
    state = status.state

    def reject(reason: RejectReason) -> IllegalTransition:
        return IllegalTransition(status, event, reason)

    match event:
        case Login(paused=paused):
            if state is not AgentState.LOGGED_OUT:
                raise reject(RejectReason.ALREADY_LOGGED_IN)
            return _paused(status, paused, now) if paused else _ready(status, now)

        case Logout(forced=forced):
            if state is AgentState.LOGGED_OUT:
                raise reject(RejectReason.NOT_LOGGED_IN)
            if not forced and state is AgentState.BUSY:
                raise reject(RejectReason.ON_A_CALL)
            if not forced and state is AgentState.OFFERED:
                raise reject(RejectReason.OFFER_PENDING)
            return AgentStatus(status.agent_id, AgentState.LOGGED_OUT, now)

        case MakeReady():
            if state in (AgentState.PAUSED, AgentState.WRAP_UP):
                return _ready(status, now)
            raise reject(_busy_reason(state, RejectReason.ALREADY_READY))

        case Pause(reason=reason):
            if not reason:
                raise reject(RejectReason.INVALID_ARGUMENT)
            if state in (AgentState.READY, AgentState.PAUSED):
                return _paused(status, reason, now)
            if state in (AgentState.BUSY, AgentState.WRAP_UP):
                return replace(status, pause_requested=reason)
            raise reject(_busy_reason(state, RejectReason.NOT_LOGGED_IN))

        case CancelPauseRequest():
            if state not in (AgentState.BUSY, AgentState.WRAP_UP) or not status.pause_requested:
                raise reject(RejectReason.NO_PAUSE_REQUESTED)
            return replace(status, pause_requested=None)

        case Offer(call_id=call_id):
            if state is not AgentState.READY:
                raise reject(_busy_reason(state, RejectReason.NOT_AVAILABLE))
            return AgentStatus(
                status.agent_id,
                AgentState.OFFERED,
                now,
                call_id=call_id,
                idle_since=status.idle_since,
            )

        case Accept():
            if state is not AgentState.OFFERED:
                raise reject(RejectReason.NO_OFFER)
            return AgentStatus(status.agent_id, AgentState.BUSY, now, call_id=status.call_id)

        case Decline() | OfferWithdrawn():
            if state is not AgentState.OFFERED:
                raise reject(RejectReason.NO_OFFER)
            return _ready(status, now, keep_idle=True)

        case OfferTimeout():
            if state is not AgentState.OFFERED:
                raise reject(RejectReason.NO_OFFER)
            return _paused(status, PauseReason.NO_ANSWER, now)

        case CallStarted(call_id=call_id):
            if state is AgentState.READY:
                return AgentStatus(status.agent_id, AgentState.BUSY, now, call_id=call_id)
            if state is AgentState.PAUSED:
                return AgentStatus(
                    status.agent_id,
                    AgentState.BUSY,
                    now,
                    call_id=call_id,
                    pause_requested=status.pause_reason,
                )
            if state is AgentState.WRAP_UP:
                return AgentStatus(
                    status.agent_id,
                    AgentState.BUSY,
                    now,
                    call_id=call_id,
                    pause_requested=status.pause_requested,
                )
            raise reject(_busy_reason(state, RejectReason.NOT_AVAILABLE))

        case CallEnded(wrap_up=wrap_up):
            if state is not AgentState.BUSY:
                raise reject(RejectReason.NOT_ON_A_CALL)
            if wrap_up < timedelta(0):
                raise reject(RejectReason.INVALID_ARGUMENT)
            if wrap_up == timedelta(0):
                return _after_work(status, now)
            return AgentStatus(
                status.agent_id,
                AgentState.WRAP_UP,
                now,
                pause_requested=status.pause_requested,
                wrap_up_until=now + wrap_up,
                call_id=status.call_id,
            )

        case ExtendWrapUp(by=by):
            if state is not AgentState.WRAP_UP:
                raise reject(RejectReason.NOT_IN_WRAP_UP)
            if by <= timedelta(0):
                raise reject(RejectReason.INVALID_ARGUMENT)
            base = max(status.wrap_up_until or now, now)
            return replace(status, wrap_up_until=base + by)

        case WrapUpExpired():
            if state is not AgentState.WRAP_UP:
                raise reject(RejectReason.NOT_IN_WRAP_UP)
            if status.wrap_up_until is not None and now < status.wrap_up_until:
                raise reject(RejectReason.WRAP_UP_NOT_OVER)
            return _after_work(status, now)

        case FinishWrapUp():
            if state is not AgentState.WRAP_UP:
                raise reject(RejectReason.NOT_IN_WRAP_UP)
            return _after_work(status, now)

    raise TypeError(f"not an agent event: {event!r}")


def _busy_reason(state: AgentState, default: RejectReason) -> RejectReason:
    return {
        AgentState.LOGGED_OUT: RejectReason.NOT_LOGGED_IN,
        AgentState.OFFERED: RejectReason.OFFER_PENDING,
        AgentState.BUSY: RejectReason.ON_A_CALL,
    }.get(state, default)


def transition(status: AgentStatus, event: Event, now: datetime) -> Transition:
    """Apply ``event`` at ``now``; raises :class:`IllegalTransition` when it does not apply."""
    new = _next(status, event, now)
    reason = new.pause_reason if new.state is AgentState.PAUSED else event_name(event)
    return Transition(new, StateLogRecord(status.agent_id, now, status.state, new.state, reason))


def can(status: AgentStatus, event: Event, now: datetime) -> bool:
    try:
        _next(status, event, now)
    except IllegalTransition:
        return False
    return True


# ------------------------------------------------------------------ state time


@dataclass(frozen=True)
class StateTime:
    """Seconds an agent spent in one state (and pause reason) on one local day."""

    agent_id: int
    day: date
    state: AgentState
    pause_reason: str | None
    seconds: float


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    # in UTC: subtracting two datetimes sharing one ZoneInfo would use wall-clock time
    return wall_to_aware(datetime.combine(day, time()), tz).astimezone(UTC)


def time_in_states(
    records: Iterable[StateLogRecord],
    zone: str,
    until: datetime,
    *,
    since: datetime | None = None,
    include_logged_out: bool = False,
) -> tuple[StateTime, ...]:
    """Seconds per agent, local day (``zone``), state and pause reason, between ``since`` and
    ``until`` (aware). Each record opens a period that lasts until the agent's next record or
    ``until``; time before an agent's first record is unknown and not counted. Days are split at
    local midnight, so DST days have 23 or 25 hours.
    """
    tz = ZoneInfo(zone)
    by_agent: dict[int, list[StateLogRecord]] = defaultdict(list)
    for record in records:
        by_agent[record.agent_id].append(record)

    totals: dict[tuple[int, date, AgentState, str | None], float] = defaultdict(float)
    for agent_id, items in by_agent.items():
        items.sort(key=lambda r: r.at)
        for i, record in enumerate(items):
            state = record.to_state
            if state is AgentState.LOGGED_OUT and not include_logged_out:
                continue
            start = record.at.astimezone(UTC)
            end = items[i + 1].at if i + 1 < len(items) else until
            if since is not None:
                start = max(start, since)
            end = min(end, until)
            reason = record.reason if state is AgentState.PAUSED else None
            while start < end:
                day = start.astimezone(tz).date()
                piece_end = min(end, _day_start(day + timedelta(days=1), tz))
                totals[(agent_id, day, state, reason)] += (piece_end - start).total_seconds()
                start = piece_end

    order = {state: i for i, state in enumerate(AgentState)}
    return tuple(
        StateTime(agent_id, day, state, reason, seconds)
        for (agent_id, day, state, reason), seconds in sorted(
            totals.items(), key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]], kv[0][3] or "")
        )
    )
