"""``Journal.hurry``: a change another node waits for (the global queue's NOTIFYs) is
written at once, not after the batch delay (it added a quarter second per hop)."""

from dbkit import migrated_sqlite
from support.polling import until

from asterisk_cube.db import models as m
from asterisk_cube.db.journal import Journal


async def test_a_hurried_write_does_not_wait_for_the_batch_delay(tmp_path):
    with migrated_sqlite(tmp_path) as sessions:
        journal = Journal(sessions, delay=60.0)
        journal.write(lambda s: s.add(m.PauseReason(code="lunch", label="Lunch")))
        journal.hurry()
        await until(lambda: journal.written == 1, timeout=10, what="the hurried write")
        journal.write(lambda s: s.add(m.PauseReason(code="later", label="Later")))
        assert journal.pending == 1  # not hurried: it waits for the delay (or close)
        journal.close()
        assert journal.written == 2
