"""The enumerations of the data model (roles, states, modes, outcomes), stored by value.
Re-exported by :mod:`asterisk_cube.db.models` (``m.CallState``, ...).
"""

from __future__ import annotations

import enum

# --------------------------------------------------------------------------- enums


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    OFFERED = "offered"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DialMode(enum.StrEnum):
    PREVIEW = "preview"
    POWER = "power"
    PREDICTIVE = "predictive"


class CampaignStatus(enum.StrEnum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"


class ContactStatus(enum.StrEnum):
    NEW = "new"  # never dialed
    DIALING = "dialing"  # claimed by a dialer right now
    NOT_ANSWERED = "not_answered"  # to be retried while attempts remain (F-E5)
    CALLBACK = "callback"  # a scheduled callback is pending (F-E6)
    DONE = "done"  # reached and closed with a final outcome
    EXHAUSTED = "exhausted"  # max attempts used without a final outcome
    INVALID = "invalid"  # number unusable


class CallKind(enum.StrEnum):
    CUSTOMER_CALLBACK = "customer_callback"  # F-I3 1
    NEW_CUSTOMER = "new_customer"  # F-I3 2
    SERVICE = "service"  # F-I3 3
    ANSWERING = "answering"  # answering-service client call (F-S*)
    PREVIEW = "preview"
    POWER = "power"
    PREDICTIVE = "predictive"
    MANUAL = "manual"  # agent-initiated, e.g. calling back a missed call


class CallState(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    DIALING = "dialing"
    CONNECTED = "connected"
    ENDED = "ended"  # talked to an agent and hung up
    MISSED = "missed"  # caller hung up while waiting (F-I7)
    ABANDONED = "abandoned"  # outbound: answered, no agent within 2 s (F-D4)
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    FAILED = "failed"
    BLOCKED = "blocked"  # rejected by ad-blocking (F-S6)
    CLOSED = "closed"  # answering service outside hours, handled without an agent


class LegRole(enum.StrEnum):
    CALLER = "caller"
    AGENT = "agent"
    CONTACT = "contact"
    CONSULT = "consult"  # answering-service forward: announcement leg


class OfferResult(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    TIMEOUT = "timeout"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"  # the caller hung up or another agent took it


class Tone(enum.StrEnum):
    FORMAL = "formal"
    INFORMAL = "informal"


class Handling(enum.StrEnum):
    NOTE = "note"
    FORWARD = "forward"


class ClosedHandling(enum.StrEnum):
    NOTE = "note"  # agent answers, tells the hours and takes a note
    ANNOUNCE = "announce"  # play the hours and hang up, no agent


class SpecialDayKind(enum.StrEnum):
    HOLIDAY = "holiday"  # closed all day
    SPECIAL = "special"  # other hours that day


class MatchKind(enum.StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"


class TopicOutcome(enum.StrEnum):
    NONE = "none"  # statistics only
    FINAL = "final"  # closes the contact (Sale, Not interested…)
    RETRY = "retry"  # answering machine / not answered (F-E5)
    CALLBACK = "callback"  # schedule a callback (F-E6)


class CallbackStatus(enum.StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class MailStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # retries exhausted; visible to admins, resendable
