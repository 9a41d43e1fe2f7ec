"""The tables of enquiry registration (F-E): categories, their topics, an agent's enquiry
and the topics it picked. Re-exported by :mod:`asterisk_cube.db.models` (``m.Enquiry``, ...).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, _enum, utcnow
from .base import UTCDateTime as UTCDateTime  # re-exported: m.UTCDateTime, the migrations
from .base import table_of as table_of  # re-exported: m.table_of
from .enums import (
    TopicOutcome,
)

# ---------------------------------------------------------- enquiry registration (F-E)


class EnquiryCategory(Base):
    """F-E1/F-E4: global categories, or campaign categories shown only on its calls."""

    __tablename__ = "enquiry_categories"
    __table_args__ = (UniqueConstraint("campaign_id", "name", name="campaign_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    multi_choice: Mapped[bool] = mapped_column(Boolean, default=False)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    topics: Mapped[list[EnquiryTopic]] = relationship(
        cascade="all, delete-orphan", order_by="EnquiryTopic.position"
    )


class EnquiryTopic(Base):
    __tablename__ = "enquiry_topics"
    __table_args__ = (UniqueConstraint("category_id", "name", name="category_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(
        ForeignKey("enquiry_categories.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[TopicOutcome] = mapped_column(_enum(TopicOutcome), default=TopicOutcome.NONE)


class Enquiry(Base):
    """One registration on a call; line/campaign/agent copied in for statistics (F-E3)."""

    __tablename__ = "enquiries"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    topics: Mapped[list[EnquiryTopic]] = relationship(secondary="enquiry_selections")


class EnquirySelection(Base):
    __tablename__ = "enquiry_selections"
    enquiry_id: Mapped[int] = mapped_column(
        ForeignKey("enquiries.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[int] = mapped_column(
        ForeignKey("enquiry_topics.id", ondelete="CASCADE"), primary_key=True
    )
