"""The tables of call recording (issue #17): a policy per line or campaign and the
recordings made. Re-exported by :mod:`asterisk_cube.db.models` (``m.Recording``, ...).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class RecordingPolicy(Base):
    """Call recording for one line or one campaign (F-M4): ``mode`` off | all | on_demand
    (the agent or a supervisor starts it from the desk), ``consent`` none | beep |
    announcement (played to both parties before recording starts, where consent law
    requires it), ``retention_days`` after which the file and its row's file go."""

    __tablename__ = "recording_policies"
    __table_args__ = (
        CheckConstraint("(line_id IS NULL) <> (campaign_id IS NULL)", name="one_scope"),
        CheckConstraint("retention_days >= 1", name="retention_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int | None] = mapped_column(
        ForeignKey("lines.id", ondelete="CASCADE"), unique=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True
    )
    mode: Mapped[str] = mapped_column(String(16), default="off")
    consent: Mapped[str] = mapped_column(String(16), default="none")
    announcement: Mapped[str | None] = mapped_column(String(200))  # media for consent=announcement
    retention_days: Mapped[int] = mapped_column(Integer, default=90)


class Recording(Base):
    """One recording of a call, made by Asterisk (ARI bridge recording). ``name`` is the
    stored recording's name (``GET /recordings/stored/{name}/file``); ``state`` recording |
    done | failed | deleted. ``call_id`` has no foreign key: the call's row may still be in
    the distributor's write-behind journal when recording starts."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_expires", "state", "expires_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    format: Mapped[str] = mapped_column(String(16), default="wav")
    target: Mapped[str] = mapped_column(String(160), default="")  # bridge:<id>
    trigger: Mapped[str] = mapped_column(String(16), default="all")  # all | on_demand
    started_by: Mapped[str] = mapped_column(String(64), default="")  # username, or "policy"
    line_id: Mapped[int | None] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="recording")
    error: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[dt.datetime] = mapped_column()
    deleted_at: Mapped[dt.datetime | None] = mapped_column()
