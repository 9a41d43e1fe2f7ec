"""The runtime component that keeps this node's lease (issue #14).

Renews every third of the lease (``[node] lease_seconds``, 15 s: every 5 s) in a worker
thread (never on the event loop), then takes over dead nodes' work (``node_takeover``);
releases the lease on a clean stop. A renewal that fails (database down) is retried at the next
tick; when the lease is found held by another process (:class:`LeaseLost`), or could
not be renewed before it expired, the component ends and ``serve`` stops: two
processes must never work as one node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from asterisk_cube.core import nodes as core
from asterisk_cube.logs import get_logger
from asterisk_cube.services.nodes import LeaseLost, NodeLease

log = get_logger(__name__)


async def keep_lease(
    lease: NodeLease,
    every: float = core.RENEW_SECONDS,
    takeover: Callable[[], Any] | None = None,
) -> None:
    """Renew every ``every`` seconds; after each renewal, ``takeover`` (a dead node's
    work, ``node_takeover``) in the same worker thread: a live node takes over."""
    try:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(_renew_then, lease, takeover)
            except LeaseLost:
                log.error("node_lease_lost", node=lease.name)
                raise
            except Exception as exc:
                log.warning("node_lease_renew_failed", node=lease.name, error=repr(exc))
                if lease.lease_until is not None and lease.clock() >= lease.lease_until:
                    log.error("node_lease_expired", node=lease.name)
                    raise LeaseLost(f"node {lease.name!r}: lease expired unrenewed") from exc
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(asyncio.to_thread(lease.release))
            log.info("node_lease_released", node=lease.name)


def _renew_then(lease: NodeLease, takeover: Callable[[], Any] | None) -> None:
    lease.renew()
    if takeover is not None:
        try:
            takeover()
        except Exception as exc:  # the lease is renewed: retried at the next tick
            log.warning("node_takeover_failed", node=lease.name, error=repr(exc))


def component(lease: NodeLease, takeover: Callable[[], Any] | None = None):
    every = lease.lease_seconds * core.RENEW_SECONDS / core.LEASE_SECONDS

    def start(state: Any) -> Any:
        return keep_lease(lease, every, takeover)

    return start
