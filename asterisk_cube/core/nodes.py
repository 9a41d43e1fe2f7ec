"""Node identity and leases: the pure rules (issue #14).

Several ``serve`` processes ("nodes") may share one database. Each has a name (the
``[node] name`` setting, by default the host name) and holds a *lease* on it: a row in
the ``nodes`` table whose ``lease_until`` it pushes forward every :data:`RENEW_SECONDS`.
A node whose lease has not expired is *live*; one whose lease expired is *dead*, and
only then may another process take its name (or, later, its work).

The one exception: a lease still live but held by a process of *this* host that no
longer exists (``kill -9``, a crash) is stale at once, so a restarted ``serve`` does
not wait for the lease to run out. A process on another host cannot be checked: its
lease must expire.

Everything here is a function of the values given (the clock is a parameter); the
database work is in :mod:`asterisk_cube.services.nodes`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

#: How long a lease lasts after each renewal.
LEASE_SECONDS = 15.0
#: How often a live node renews its lease (well inside LEASE_SECONDS: two renewals
#: may fail or be late before the lease expires).
RENEW_SECONDS = 5.0

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
NAME_RULE = (
    "1-32 characters: lowercase letters, digits, '-' or '_', starting with a letter or digit"
)


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a usable node name, or None."""
    if not NAME_PATTERN.fullmatch(name):
        return f"must be a short name ({NAME_RULE}), got {name!r}"
    return None


def default_name(hostname: str) -> str:
    """The node name made from a host name: its first label, lowercase, other characters
    replaced by '-', at most 32 characters; "node" when nothing usable is left."""
    label = hostname.split(".", 1)[0].lower()
    slug = re.sub(r"[^a-z0-9_-]", "-", label).lstrip("-_")[:32]
    return slug if slug and NAME_PATTERN.fullmatch(slug) else "node"


@dataclass(frozen=True)
class Lease:
    """What the ``nodes`` row says about a node."""

    name: str
    host: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    lease_until: dt.datetime


def is_live(lease: Lease, now: dt.datetime) -> bool:
    return lease.lease_until > now


def expires(now: dt.datetime, seconds: float = LEASE_SECONDS) -> dt.datetime:
    """``lease_until`` for a lease taken or renewed at ``now``."""
    return now + dt.timedelta(seconds=seconds)


def renew_due(last_renewed: dt.datetime, now: dt.datetime, every: float = RENEW_SECONDS) -> bool:
    return now - last_renewed >= dt.timedelta(seconds=every)


def refusal(held: Lease | None, now: dt.datetime, host: str, pid_alive: bool) -> str | None:
    """Why a process on ``host`` may not take the node name now, or None when it may.

    ``pid_alive``: whether ``held.pid`` is a running process on this host (only asked
    when ``held.host == host``)."""
    if held is None or not is_live(held, now):
        return None
    if held.host == host and not pid_alive:
        return None  # its process is gone: a crash or kill -9 on this host
    left = (held.lease_until - now).total_seconds()
    return (
        f"node name {held.name!r} is in use by a live serve (pid {held.pid} on {held.host}, "
        f"lease for {left:.0f} s more): set another [node] name, or stop that one"
    )


def still_ours(held: Lease | None, host: str, pid: int, started_at: dt.datetime) -> bool:
    """Whether the row still belongs to this process (nobody took over the name)."""
    return (
        held is not None and held.host == host and held.pid == pid and held.started_at == started_at
    )
