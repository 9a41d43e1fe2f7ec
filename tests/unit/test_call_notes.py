"""Call notes (F-S9): validation, and mail through a REAL local SMTP server (aiosmtpd) —
a note arrives with the right content; a refusing or absent server means retries with
backoff until it works, or a visible FAILED note that can be resent. Never dropped."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from smtpkit import Inbox, free_port, smtp_servers
from sqlalchemy import select
from support.clocks import WallClock

from asterisk_cube.config import SmtpSettings
from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.mailer import Backoff, NoteMailer, build_message
from asterisk_cube.services.notes import (
    NoteError,
    NoteFilter,
    create_note,
    note_rows,
    resend_notes,
)

T0 = dt.datetime(2026, 11, 23, 13, 5, tzinfo=dt.UTC)


@pytest.fixture
def smtp_server():
    yield from smtp_servers()


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'cube.db'}"
    upgrade(url)
    return make_sessionmaker(make_engine(url))


@pytest.fixture
def client(sessions):
    with transaction(sessions) as s:
        c = p.add_client(
            s,
            "Acme AS",
            own_numbers=["+4722000000"],
            recipients=["office@acme.test", "boss@acme.test"],
        )
        p.add_line(s, "4721000099", client="Acme AS")
        return c.id


def mailer(sessions, port, clock, **kwargs):
    smtp = SmtpSettings(host="127.0.0.1", port=port, sender="notes@cube.test")
    kwargs.setdefault("backoff", Backoff(base=30, factor=2, cap=600))
    return NoteMailer(sessions, smtp, now=clock, timeout=5, **kwargs)


def note_state(sessions, note_id):
    with sessions() as s:
        n = s.get(m.CallNote, note_id)
        return n.mail_status.value, n.mail_attempts, n.mail_next_try_at, n.mail_error


def add_note(sessions, **kwargs):
    defaults = {"caller_name": "Kari Nordmann", "callback_number": "912 34 567"}
    with transaction(sessions) as s:
        return create_note(
            s, "Acme AS", "Please call about invoice 42.", **{**defaults, **kwargs}
        ).id


# --- validation --------------------------------------------------------------------------


def test_note_is_stored_pending_with_a_normalised_callback_number(sessions, client):
    note_id = add_note(sessions)
    with sessions() as s:
        note = s.get(m.CallNote, note_id)
        assert note.callback_number == "+4791234567"
        assert note.mail_status == m.MailStatus.PENDING and note.mail_attempts == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"callback_number": "22 00 00 00"}, "is Acme AS's own number"),
        ({"callback_number": "+47 21 00 00 99"}, "own number"),  # the line the caller dialed
        ({"callback_number": "anonymous"}, "is not a phone number"),
        ({"callback_number": "12"}, "not a valid phone number"),
        ({"callback_number": "9123 45ab"}, "'9123 45ab' is not a phone number"),  # not +4791234545
        ({"caller_name": "x" * 201}, "longer than 200"),
        ({"employee_id": 999}, "does not belong to Acme AS"),
        ({"agent_id": 999}, "no agent with id 999"),
    ],
)
def test_bad_notes_are_refused_with_a_clear_message(sessions, client, kwargs, error):
    with pytest.raises(NoteError, match=error), transaction(sessions) as s:
        create_note(s, "Acme AS", "hello", **kwargs)
    with sessions() as s:
        assert s.scalars(select(m.CallNote)).all() == []


def test_empty_message_and_unknown_client_are_refused(sessions, client):
    with pytest.raises(NoteError, match="message is empty"), transaction(sessions) as s:
        create_note(s, "Acme AS", "   ")
    with pytest.raises(p.ProvisioningError, match="no client named"), transaction(sessions) as s:
        create_note(s, "Nobody", "hello")


def test_no_callback_number_is_allowed(sessions, client):
    note_id = add_note(sessions, callback_number="")
    with sessions() as s:
        assert s.get(m.CallNote, note_id).callback_number == ""


# --- mail ------------------------------------------------------------------------------


async def test_note_arrives_at_the_smtp_server_with_the_right_content(
    sessions, client, smtp_server
):
    inbox = Inbox()
    port = smtp_server(inbox)
    clock = WallClock(T0)
    note_id = add_note(sessions)
    worker = mailer(sessions, port, clock)
    assert await worker.process_due() == 1
    [(rcpt, msg)] = inbox.messages
    assert sorted(rcpt) == ["boss@acme.test", "office@acme.test"]
    assert msg["Subject"] == "Call note for Acme AS: Kari Nordmann"
    assert msg["From"] == "notes@cube.test"
    assert msg["X-Asterisk-Cube-Note"] == str(note_id)
    body = msg.get_content()
    assert "Please call about invoice 42." in body
    assert "Call back on:    +4791234567" in body
    assert "Caller:          Kari Nordmann" in body
    status, attempts, next_try, error = note_state(sessions, note_id)
    assert (status, attempts, next_try, error) == ("sent", 1, None, None)
    assert await worker.process_due() == 0  # nothing sent twice


async def test_refused_mail_is_retried_with_backoff_until_it_is_accepted(
    sessions, client, smtp_server
):
    inbox = Inbox(refuse=2)
    port = smtp_server(inbox)
    clock = WallClock(T0)
    note_id = add_note(sessions)
    worker = mailer(sessions, port, clock)

    await worker.process_due()
    status, attempts, next_try, error = note_state(sessions, note_id)
    assert (status, attempts) == ("pending", 1)
    assert "451" in error and next_try == T0 + dt.timedelta(seconds=30)
    assert await worker.process_due() == 0  # not due yet

    clock.advance(30)
    await worker.process_due()
    status, attempts, next_try, _ = note_state(sessions, note_id)
    assert (status, attempts) == ("pending", 2)
    assert next_try == clock.now + dt.timedelta(seconds=60)  # doubled

    clock.advance(60)
    await worker.process_due()
    assert note_state(sessions, note_id)[:2] == ("sent", 3)
    assert len(inbox.messages) == 1


async def test_server_down_then_back_up(sessions, client, smtp_server):
    port = free_port()  # nothing listens here yet
    clock = WallClock(T0)
    note_id = add_note(sessions)
    worker = mailer(sessions, port, clock)
    await worker.process_due()
    status, attempts, _, error = note_state(sessions, note_id)
    assert (status, attempts) == ("pending", 1)
    assert "SMTPConnect" in error

    inbox = Inbox()
    smtp_server(inbox, port)  # the server comes back on the same port
    clock.advance(30)
    await worker.process_due()
    assert note_state(sessions, note_id)[:2] == ("sent", 2)
    assert "invoice 42" in inbox.messages[0][1].get_content()


async def test_after_max_attempts_the_note_is_failed_visible_and_resendable(
    sessions, client, smtp_server
):
    port = free_port()
    clock = WallClock(T0)
    note_id = add_note(sessions)
    worker = mailer(sessions, port, clock, max_attempts=3)
    for _ in range(3):
        await worker.process_due()
        clock.advance(600)
    status, attempts, next_try, _ = note_state(sessions, note_id)
    assert (status, attempts, next_try) == ("failed", 3, None)
    assert await worker.process_due() == 0  # failed notes wait for a human
    with sessions() as s:
        [row] = note_rows(s, NoteFilter(status="failed"))
        assert row["id"] == note_id and row["attempts"] == 3 and "SMTPConnect" in row["error"]
        assert note_rows(s, NoteFilter(status="sent")) == []

    inbox = Inbox()
    smtp_server(inbox, port)
    with transaction(sessions) as s:
        assert resend_notes(s) == [note_id]
    await worker.process_due()
    assert note_state(sessions, note_id)[:2] == ("sent", 1)
    with pytest.raises(NoteError, match="already sent"), transaction(sessions) as s:
        resend_notes(s, [note_id])


async def test_a_client_without_recipients_fails_visibly_until_one_is_added(sessions, smtp_server):
    inbox = Inbox()
    port = smtp_server(inbox)
    clock = WallClock(T0)
    with transaction(sessions) as s:
        p.add_client(s, "Acme AS")
    note_id = add_note(sessions)
    worker = mailer(sessions, port, clock)
    await worker.process_due()
    assert note_state(sessions, note_id)[3] == "client has no note recipients"
    with transaction(sessions) as s:
        acme = p.get_client(s, "Acme AS")
        acme.recipients.append(m.NoteRecipient(email="new@acme.test"))
    clock.advance(30)
    await worker.process_due()
    assert note_state(sessions, note_id)[0] == "sent"
    assert inbox.messages[0][0] == ["new@acme.test"]


async def test_employee_note_also_goes_to_the_employee(sessions, client, smtp_server):
    inbox = Inbox()
    port = smtp_server(inbox)
    with transaction(sessions) as s:
        employee = m.Employee(
            client_id=client, name="Ola Hansen", department="Sales", email="ola@acme.test"
        )
        s.add(employee)
        s.flush()
        employee_id = employee.id
    add_note(sessions, employee_id=employee_id)
    await mailer(sessions, port, WallClock(T0)).process_due()
    [(rcpt, msg)] = inbox.messages
    assert "ola@acme.test" in rcpt
    assert "For:             Ola Hansen (Sales)" in msg.get_content()


def test_a_note_is_claimed_by_one_worker_only(sessions, client):
    add_note(sessions)
    clock = WallClock(T0)
    first = mailer(sessions, 1, clock)
    second = mailer(sessions, 1, clock)
    assert len(first._claim_due()) == 1
    assert second._claim_due() == []


async def test_the_running_worker_sends_when_woken(sessions, client, smtp_server):
    inbox = Inbox()
    port = smtp_server(inbox)
    worker = NoteMailer(
        sessions, SmtpSettings(host="127.0.0.1", port=port), poll_interval=30, timeout=5
    )
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.1)
        add_note(sessions)
        worker.wake()
        for _ in range(100):
            if inbox.messages:
                break
            await asyncio.sleep(0.05)
        assert len(inbox.messages) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_message_times_are_in_the_clients_zone(sessions, client):
    add_note(sessions)
    with sessions() as s:
        note = s.scalars(select(m.CallNote)).one()
        note.created_at = T0  # 14:05 in Oslo
        msg = build_message(note, s.get(m.Client, client), ["a@b.test"], "x@cube.test")
    assert "Time:            2026-11-23 14:05 (Europe/Oslo)" in msg.get_content()
