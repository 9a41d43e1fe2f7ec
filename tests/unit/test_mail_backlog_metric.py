"""The note mailer's backlog on /metrics (issue #15): notes not mailed yet, counted at
each pass; fixtures and helpers from test_call_notes."""

from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families
from smtpkit import Inbox, free_port
from support.clocks import WallClock
from test_call_notes import T0, add_note, client, mailer, sessions, smtp_server

from asterisk_cube.metrics import Metrics

__all__ = ["client", "sessions", "smtp_server"]  # the fixtures, reused


def backlog(worker) -> float:
    text = Metrics(SimpleNamespace(extras={"mailer": worker})).exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "asterisk_cube_mail_backlog":
                return sample.value
    raise AssertionError("no asterisk_cube_mail_backlog")


async def test_backlog_grows_while_smtp_is_down_and_drains(sessions, client, smtp_server):
    port = free_port()  # nothing listens yet
    clock = WallClock(T0)
    worker = mailer(sessions, port, clock)
    add_note(sessions)
    add_note(sessions)
    await worker.process_due()
    assert backlog(worker) == 2
    smtp_server(Inbox(), port)
    clock.advance(30)
    await worker.process_due()  # sends both (the count was taken before)
    await worker.process_due()
    assert backlog(worker) == 0
