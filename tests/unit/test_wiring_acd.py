"""serve's "acd" component writes the distributor's journal out when serve stops."""

import asyncio

from sqlalchemy import select

from asterisk_cube.acd.distributor import Distributor
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.events import EventHub
from asterisk_cube.services import provisioning as p
from asterisk_cube.wiring import keep_until_stopped


async def test_stopping_serve_writes_what_the_journal_holds(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with transaction(sessions) as s:
        p.add_line(s, "100", "Support")
        line = s.scalar(select(m.Line)).id
    d = Distributor(sessions, EventHub())
    d.load()
    d.journal.delay = 60.0  # nothing would be written before the stop
    component = asyncio.create_task(keep_until_stopped(d))
    await asyncio.sleep(0)
    call_id = d.call_arrived("ch-1", line, "91000001")
    assert d.journal.pending > 0
    component.cancel()  # what Runtime._shutdown does to every component
    await asyncio.gather(component, return_exceptions=True)
    with transaction(sessions) as s:
        assert s.get(m.Call, call_id).channel_id == "ch-1"
