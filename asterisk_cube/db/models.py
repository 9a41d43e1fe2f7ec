"""The data model: everything that must survive a restart.

Asterisk owns channels and bridges; this schema owns configuration (lines,
agents, campaigns, clients, enquiry categories) and history (calls, legs,
offers, agent states, attempts, notes). Columns hold plain values so the same
code and migrations run on SQLite (embedded default) and PostgreSQL.

Times are stored in UTC (see ``UTCDateTime``); wall-clock rules such as
opening hours and calling windows keep their own IANA time zone.

The tables are here but the answering service's beside ``Client``
(:mod:`.service_models`), enquiry registration's (:mod:`.enquiry_models`) and call
recording's (:mod:`.recording_models`); the declarative base and column types are in
:mod:`.base`, the enumerations in :mod:`.enums` (all reachable as ``m.<name>`` from this
module).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from asterisk_cube.core.pacing import DEFAULT_MAX_DIAL_RATIO

from .base import Base, _enum, utcnow
from .base import UTCDateTime as UTCDateTime  # re-exported: m.UTCDateTime, the migrations
from .base import table_of as table_of  # re-exported: m.table_of
from .enquiry_models import Enquiry as Enquiry  # the enquiry tables, re-exported
from .enquiry_models import EnquiryCategory as EnquiryCategory
from .enquiry_models import EnquirySelection as EnquirySelection
from .enquiry_models import EnquiryTopic as EnquiryTopic
from .enums import (
    AgentState,
    CallbackStatus,
    CallKind,
    CallState,
    CampaignStatus,
    ContactStatus,
    DialMode,
    Direction,
    LegRole,
    MailStatus,
    OfferResult,
    Role,
)
from .enums import ClosedHandling as ClosedHandling  # re-exported
from .enums import Handling as Handling  # re-exported
from .enums import MatchKind as MatchKind  # re-exported
from .enums import SpecialDayKind as SpecialDayKind  # re-exported
from .enums import Tone as Tone  # re-exported
from .enums import TopicOutcome as TopicOutcome  # re-exported
from .node_models import Node as Node  # the node leases (issue #14), re-exported
from .recording_models import Recording as Recording  # the recording tables, re-exported
from .recording_models import RecordingPolicy as RecordingPolicy
from .service_models import AdblockVerdict as AdblockVerdict
from .service_models import BlocklistEntry as BlocklistEntry
from .service_models import ClientException as ClientException
from .service_models import Employee as Employee
from .service_models import FaqEntry as FaqEntry
from .service_models import NoteRecipient as NoteRecipient
from .service_models import OpeningHours as OpeningHours  # the answering-service tables
from .service_models import SpecialDay as SpecialDay

# ------------------------------------------------------------------- association


class AgentSkill(Base):
    __tablename__ = "agent_skills"
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True
    )


class AgentLine(Base):
    """A line the agent is permitted to serve (F-I1), and whether it staffs it now (F-I2)."""

    __tablename__ = "agent_lines"
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    line_id: Mapped[int] = mapped_column(
        ForeignKey("lines.id", ondelete="CASCADE"), primary_key=True
    )
    chosen: Mapped[bool] = mapped_column(Boolean, default=False)


# ------------------------------------------------------------------ configuration


class Skill(Base):
    __tablename__ = "skills"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)


class Line(Base):
    """An inbound number (DID). Exactly one of campaign (hotline) or client (answering
    service) may be set; neither means a service line (F-I3)."""

    __tablename__ = "lines"
    __table_args__ = (
        CheckConstraint("campaign_id IS NULL OR client_id IS NULL", name="one_owner"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    did: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher is served first
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    offer_timeout_seconds: Mapped[int] = mapped_column(Integer, default=20)
    announcement: Mapped[str | None] = mapped_column(String(200))  # sound played while waiting
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign | None] = relationship(back_populates="lines")
    client: Mapped[Client | None] = relationship(back_populates="lines")


class Agent(Base):
    """A user: agents take calls; supervisors and admins also see the panel and reports."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.AGENT)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    endpoint: Mapped[str | None] = mapped_column(String(80))  # e.g. PJSIP/agent01
    # the phone the agent's calls ring: "desk" (endpoint) or "browser" (core/phones.py)
    phone: Mapped[str] = mapped_column(String(10), default="desk", server_default="desk")
    # the desk language the agent picked; None: follow the browser (Accept-Language)
    language: Mapped[str | None] = mapped_column(String(10), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Bumped by logout, a password change, deactivation and a role change: a web session
    # made under an older version is over (web/auth.py).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    skills: Mapped[list[Skill]] = relationship(secondary="agent_skills", order_by="Skill.name")
    line_links: Mapped[list[AgentLine]] = relationship(cascade="all, delete-orphan")
    status: Mapped[AgentStatus | None] = relationship(
        back_populates="agent", cascade="all, delete-orphan", uselist=False
    )


class PauseReason(Base):
    __tablename__ = "pause_reasons"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(80))
    system: Mapped[bool] = mapped_column(Boolean, default=False)  # e.g. no_answer after an offer


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        CheckConstraint("abandon_cap >= 0 AND abandon_cap <= 1", name="abandon_cap_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    mode: Mapped[DialMode | None] = mapped_column(_enum(DialMode))  # outbound only
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus), default=CampaignStatus.STOPPED
    )
    skill_id: Mapped[int | None] = mapped_column(ForeignKey("skills.id", ondelete="SET NULL"))
    caller_id: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Oslo")
    phone_region: Mapped[str] = mapped_column(String(2), default="NO")
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_interval_minutes: Mapped[int] = mapped_column(Integer, default=60)
    abandon_cap: Mapped[float] = mapped_column(Float, default=0.03)
    max_dial_ratio: Mapped[float] = mapped_column(Float, default=DEFAULT_MAX_DIAL_RATIO)
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=15)
    callback_reservation_minutes: Mapped[int] = mapped_column(Integer, default=15)
    forced_registration: Mapped[bool] = mapped_column(Boolean, default=False)
    amd_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    skill: Mapped[Skill | None] = relationship()
    lines: Mapped[list[Line]] = relationship(back_populates="campaign")
    windows: Mapped[list[CallingWindow]] = relationship(
        cascade="all, delete-orphan", order_by="(CallingWindow.weekday, CallingWindow.starts)"
    )


class CallingWindow(Base):
    """When a campaign may dial, in the campaign's time zone (weekday 0 = Monday)."""

    __tablename__ = "calling_windows"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    starts: Mapped[dt.time] = mapped_column(Time)
    ends: Mapped[dt.time] = mapped_column(Time)


# ------------------------------------------------------------------------ contacts


class ContactList(Base):
    __tablename__ = "contact_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(500))
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_next", "campaign_id", "status", "next_attempt_at"),
        Index("ix_contacts_phone", "phone"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("contact_lists.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[ContactStatus] = mapped_column(_enum(ContactStatus), default=ContactStatus.NEW)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    last_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    outcome_topic_id: Mapped[int | None] = mapped_column(
        ForeignKey("enquiry_topics.id", ondelete="SET NULL")
    )
    claimed_by: Mapped[str | None] = mapped_column(String(80))  # serve node holding the dial
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ContactAttempt(Base):
    """One dial of a contact, for attempt limits, retry intervals and outbound reports."""

    __tablename__ = "contact_attempts"
    __table_args__ = (
        Index("ix_contact_attempts_started", "started_at"),  # reports (migration 0002)
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    result: Mapped[CallState | None] = mapped_column(_enum(CallState))


class ScheduledCallback(Base):
    """F-E6: a callback for one agent (``agent_id``) or for all (NULL)."""

    __tablename__ = "scheduled_callbacks"
    __table_args__ = (Index("ix_callbacks_due", "status", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    due_at: Mapped[dt.datetime] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CallbackStatus] = mapped_column(
        _enum(CallbackStatus), default=CallbackStatus.PENDING
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column()


# ---------------------------------------------------------- answering service (F-S)


class Client(Base):
    """A company whose calls our agents answer in its name (tabuni)."""

    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    customer_number: Mapped[str | None] = mapped_column(String(40))
    greeting: Mapped[str] = mapped_column(Text, default="")  # formal wording
    greeting_informal: Mapped[str] = mapped_column(Text, default="")
    work_instruction: Mapped[str] = mapped_column(Text, default="")
    tone: Mapped[Tone] = mapped_column(_enum(Tone), default=Tone.FORMAL)
    language: Mapped[str] = mapped_column(String(10), default="nb")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Oslo")
    phone_region: Mapped[str] = mapped_column(String(2), default="NO")
    holiday_country: Mapped[str | None] = mapped_column(String(2))  # national holidays, e.g. NO
    standard_handling: Mapped[Handling] = mapped_column(_enum(Handling), default=Handling.NOTE)
    forward_target1: Mapped[str | None] = mapped_column(String(80))
    forward_target2: Mapped[str | None] = mapped_column(String(80))
    forward_timeout_seconds: Mapped[int] = mapped_column(Integer, default=20)
    closed_handling: Mapped[ClosedHandling] = mapped_column(
        _enum(ClosedHandling), default=ClosedHandling.NOTE
    )
    adblock_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    block_anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    own_numbers: Mapped[list] = mapped_column(JSON, default=list)  # never a callback number (F-S9)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[Line]] = relationship(back_populates="client")
    hours: Mapped[list[OpeningHours]] = relationship(
        cascade="all, delete-orphan", order_by="(OpeningHours.weekday, OpeningHours.opens)"
    )
    special_days: Mapped[list[SpecialDay]] = relationship(
        cascade="all, delete-orphan", order_by="SpecialDay.day"
    )
    exceptions: Mapped[list[ClientException]] = relationship(
        cascade="all, delete-orphan", order_by="ClientException.starts_at"
    )
    employees: Mapped[list[Employee]] = relationship(
        cascade="all, delete-orphan", order_by="(Employee.department, Employee.name)"
    )
    faq: Mapped[list[FaqEntry]] = relationship(
        cascade="all, delete-orphan", order_by="FaqEntry.position"
    )
    recipients: Mapped[list[NoteRecipient]] = relationship(cascade="all, delete-orphan")


# ------------------------------------------------------------------------ calls


class Call(Base):
    """One customer interaction, inbound or outbound, from entry to hang-up.

    ``queued_at`` is the waiting order: it survives a restart of ``serve``.
    """

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_state", "state", "queued_at"),
        Index("ix_calls_started", "started_at"),
        Index("ix_calls_queued", "queued_at"),  # reports over a date range (migration 0002)
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    kind: Mapped[CallKind] = mapped_column(_enum(CallKind))
    state: Mapped[CallState] = mapped_column(_enum(CallState))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    dialed_number: Mapped[str] = mapped_column(String(64), default="")
    channel_id: Mapped[str | None] = mapped_column(
        String(128), index=True
    )  # ARI channel of the customer
    node: Mapped[str | None] = mapped_column(String(80))  # which serve process owns it
    # the node whose claim offered this call to its agent (issue #14, acd/crossnode_claims.py)
    offer_node: Mapped[str | None] = mapped_column(String(80))
    line_priority: Mapped[int] = mapped_column(Integer, default=0)  # at entry, for reports
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[dt.datetime | None] = mapped_column()
    answered_at: Mapped[dt.datetime | None] = mapped_column()  # connected to an agent
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(String(80))
    registration_done: Mapped[bool] = mapped_column(Boolean, default=False)

    legs: Mapped[list[CallLeg]] = relationship(cascade="all, delete-orphan", order_by="CallLeg.id")


class CallLeg(Base):
    __tablename__ = "call_legs"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    role: Mapped[LegRole] = mapped_column(_enum(LegRole))
    channel_id: Mapped[str | None] = mapped_column(String(128), index=True)
    endpoint: Mapped[str] = mapped_column(String(120), default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    cause: Mapped[str | None] = mapped_column(String(80))


class CallOffer(Base):
    """F-I4: each offer of a call to an agent and how it ended."""

    __tablename__ = "call_offers"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    offered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    result: Mapped[OfferResult] = mapped_column(_enum(OfferResult), default=OfferResult.PENDING)


class MissedCall(Base):
    """F-I7: a caller who hung up while waiting; processed after the callback."""

    __tablename__ = "missed_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="SET NULL"))
    caller_number: Mapped[str] = mapped_column(String(64))
    missed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[dt.datetime | None] = mapped_column()
    processed_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    callback_call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL")
    )


class CallNote(Base):
    """F-S9: a note for the client, stored and e-mailed (retried until sent or failed)."""

    __tablename__ = "call_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    callback_number: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    mail_status: Mapped[MailStatus] = mapped_column(_enum(MailStatus), default=MailStatus.PENDING)
    mail_attempts: Mapped[int] = mapped_column(Integer, default=0)
    mail_next_try_at: Mapped[dt.datetime | None] = mapped_column()
    mail_error: Mapped[str | None] = mapped_column(Text)
    mailed_at: Mapped[dt.datetime | None] = mapped_column()


# ----------------------------------------------------------------- agent states


class AgentStatus(Base):
    """The agent's current state, so a restart of ``serve`` resumes it."""

    __tablename__ = "agent_status"
    agent_id: Mapped[int] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[AgentState] = mapped_column(_enum(AgentState), default=AgentState.LOGGED_OUT)
    since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    pause_requested: Mapped[str | None] = mapped_column(String(32))  # pause after wrap-up
    wrap_up_until: Mapped[dt.datetime | None] = mapped_column()
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    idle_since: Mapped[dt.datetime | None] = mapped_column()  # for "idle longest"
    # the node (serve) that last wrote this status: the one the agent works on (issue #14)
    node: Mapped[str | None] = mapped_column(String(80))
    # its phone per the owner's Asterisk, for other nodes' panels (migration 0010)
    device: Mapped[str | None] = mapped_column(String(32))
    device_since: Mapped[dt.datetime | None] = mapped_column()

    agent: Mapped[Agent] = relationship(back_populates="status")


class AgentStateLog(Base):
    """Every transition, for the state-time report (F-D5, F-M2)."""

    __tablename__ = "agent_state_log"
    __table_args__ = (
        Index("ix_state_log_agent_at_id", "agent_id", "at", "id"),  # migration 0002
        Index("ix_state_log_at", "at"),  # reports over a date range (migration 0002)
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    from_state: Mapped[AgentState] = mapped_column(_enum(AgentState, "from_state"))
    to_state: Mapped[AgentState] = mapped_column(_enum(AgentState, "to_state"))
    reason: Mapped[str | None] = mapped_column(String(80))


class AuditLog(Base):
    """Supervisor and admin actions, with who did them (F-M1)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(64))  # username, or "cli"
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(120), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class ConfigVersion(Base):
    """One row: bumped in the same transaction as every configuration change (lines,
    agents and their grants, skills, campaigns, clients, ...), so every running ``serve``
    notices it (``db.config_version``)."""

    __tablename__ = "config_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
