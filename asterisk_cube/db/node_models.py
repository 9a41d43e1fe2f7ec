"""The node leases of several ``serve`` processes on one database (issue #14,
:mod:`asterisk_cube.core.nodes`). Re-exported by :mod:`asterisk_cube.db.models` (``m.Node``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Node(Base):
    """A ``serve`` process's lease on its node name (issue #14, core/nodes.py)."""

    __tablename__ = "nodes"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column()
    heartbeat_at: Mapped[dt.datetime] = mapped_column()
    lease_until: Mapped[dt.datetime] = mapped_column()
    # host:port of the node's Asterisk for the inter-node trunk (``[node] sip_address``,
    # written by its `dialplan install`; core/trunk.py)
    sip_address: Mapped[str | None] = mapped_column(String(300))

    # when a survivor took over this dead node's work (claims, agents); None while live
    taken_over_at: Mapped[dt.datetime | None] = mapped_column()
