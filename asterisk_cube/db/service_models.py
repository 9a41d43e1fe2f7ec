"""The answering service's (F-S) tables beside the client itself (which is in
:mod:`.models`): a client's opening hours, special days, exceptions, employees, FAQ and
note recipients, and the ad-blocking list and verdicts. Re-exported by
:mod:`asterisk_cube.db.models` (``m.OpeningHours``, ...).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, _enum, utcnow
from .enums import Handling, MatchKind, SpecialDayKind

# ---------------------------------------------------------- answering service (F-S)


class OpeningHours(Base):
    __tablename__ = "opening_hours"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[dt.time] = mapped_column(Time)
    closes: Mapped[dt.time] = mapped_column(Time)


class SpecialDay(Base):
    """A dated holiday (closed) or a day with other hours."""

    __tablename__ = "special_days"
    __table_args__ = (UniqueConstraint("client_id", "day", "opens", name="day_opens"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[SpecialDayKind] = mapped_column(_enum(SpecialDayKind))
    name: Mapped[str] = mapped_column(String(120), default="")
    opens: Mapped[dt.time | None] = mapped_column(Time)
    closes: Mapped[dt.time | None] = mapped_column(Time)


class ClientException(Base):
    """F-S3: a temporary instruction that overrides standard handling for a period."""

    __tablename__ = "client_exceptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    instruction: Mapped[str] = mapped_column(Text)
    handling: Mapped[Handling | None] = mapped_column(_enum(Handling))
    forward_target1: Mapped[str | None] = mapped_column(String(80))
    forward_target2: Mapped[str | None] = mapped_column(String(80))


class Employee(Base):
    """F-S4: an employee or department of a client, with its own handling."""

    __tablename__ = "employees"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(200))
    handling: Mapped[Handling] = mapped_column(_enum(Handling), default=Handling.NOTE)
    forward_target1: Mapped[str | None] = mapped_column(String(80))
    forward_target2: Mapped[str | None] = mapped_column(String(80))
    info: Mapped[str] = mapped_column(Text, default="")


class FaqEntry(Base):
    __tablename__ = "faq_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    handling: Mapped[Handling | None] = mapped_column(_enum(Handling))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))


class NoteRecipient(Base):
    __tablename__ = "note_recipients"
    __table_args__ = (UniqueConstraint("client_id", "email", name="client_email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(200))


class BlocklistEntry(Base):
    """F-S6: a number or prefix judged as advertising. ``client_id`` NULL = global."""

    __tablename__ = "blocklist"
    __table_args__ = (UniqueConstraint("client_id", "number", "kind", name="entry"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(32))
    kind: Mapped[MatchKind] = mapped_column(_enum(MatchKind), default=MatchKind.EXACT)
    known_advertiser: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AdblockVerdict(Base):
    """Every ad-block decision with its reason (blocked calls never reach an agent)."""

    __tablename__ = "adblock_verdicts"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    caller: Mapped[str] = mapped_column(String(64))
    blocked: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(120))
