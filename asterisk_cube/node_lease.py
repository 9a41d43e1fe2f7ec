"""The runtime component that keeps this node's lease (issue #14).

Renews every ``RENEW_SECONDS`` in a worker thread (never on the event loop), releases
the lease on a clean stop. A renewal that fails (database down) is retried at the next
tick; when the lease is found held by another process (:class:`LeaseLost`), or could
not be renewed before it expired, the component ends and ``serve`` stops: two
processes must never work as one node.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asterisk_cube.core import nodes as core
from asterisk_cube.logs import get_logger
from asterisk_cube.services.nodes import LeaseLost, NodeLease

log = get_logger(__name__)


async def keep_lease(lease: NodeLease, every: float = core.RENEW_SECONDS) -> None:
    try:
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(lease.renew)
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


def component(lease: NodeLease):
    def start(state: Any) -> Any:
        return keep_lease(lease)

    return start
