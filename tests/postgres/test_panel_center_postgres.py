"""The whole center on a node's panel, on PostgreSQL (issue #14 item 3): an agent's
change on node b wakes node a's CenterView through the NOTIFY b's journal sends with
its batch (no lease tick, no poll here), and a re-reads b's rows off the loop."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import select

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.config_version import ConfigWatcher
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.nodes import NodeLease
from asterisk_cube.web.panel_nodes import CHANNEL, CenterChanged, CenterView


@pytest.mark.integration
async def test_a_change_on_node_b_wakes_node_as_panel_through_notify(pg_db):
    upgrade(pg_db)
    engine = make_engine(pg_db)
    sessions = make_sessionmaker(engine)
    for name in ("a", "b"):
        NodeLease(sessions, name).take()
    with transaction(sessions) as s:
        p.add_agent(s, "bob", endpoint="PJSIP/bob")
        bob = s.scalar(select(m.Agent.id))
    hub = EventHub()
    center = CenterView(sessions, hub, "a", coalesce=0.05)
    watcher = ConfigWatcher(engine, interval=30)  # the poll cannot help in time
    watcher.channels[CHANNEL] = center.poke_threadsafe
    changed = hub.subscribe(CenterChanged, name="test")
    tasks = [asyncio.create_task(watcher.run()), asyncio.create_task(center.run())]
    b = Distributor(sessions, EventHub(), None, node="b")
    b_center = CenterView(sessions, EventHub(), "b")
    b.journal.before_commit = b_center.notify_hook
    try:
        assert await asyncio.to_thread(watcher.listening.wait, 10)
        await asyncio.wait_for(changed.get(), 5)  # the first read: the nodes
        assert center.others_live and center.rows.agents == []
        reads = center.reads
        b_center.others_live = True  # as b's own CenterView finds a live
        b.load()
        await b.login(bob)  # the status goes out with b's next journal batch
        await asyncio.wait_for(changed.get(), 5)
        assert center.reads == reads + 1
        assert [(x["username"], x["state"], x["node"]) for x in center.rows.agents] == [
            ("bob", "paused", "b")
        ]
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await b.close()
        engine.dispose()
