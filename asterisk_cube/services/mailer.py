"""The call-note mail worker (F-S9): sends pending notes to the client over SMTP (aiosmtplib),
retries failures with backoff, and gives up visibly — never silently.

Life of a note's mail (columns of ``call_notes``)::

    pending ──send ok──────────────────────────────► sent (mailed_at)
       │ fail: mail_attempts += 1, mail_error, mail_next_try_at = now + backoff
       ├── the message cannot be built ───────────► failed at once, the reason in
       │                                            mail_error (the other notes go on)
       └── after max_attempts failures ───────────► failed (listed by
                                                     `asterisk-cube client notes --failed`,
                                                     requeued by `client resend-notes`)

The note itself is stored before any of this (``services.notes.create_note``), so a dead
mail server delays a note but never loses it. Several ``serve`` processes may run the worker
against one database: a note is *claimed* by a conditional UPDATE that moves its
``mail_next_try_at`` a lease into the future, so only one process sends it at a time.

In the runtime::

    mailer = NoteMailer(sessions, settings.smtp)
    Runtime(settings, components={"notes-mail": mailer.component}, ...)
    # after storing a note in this process: mailer.wake()
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from asterisk_cube.config import SmtpSettings
from asterisk_cube.core.text import control_problem
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger
from asterisk_cube.redact import redact
from asterisk_cube.services.notes import note_recipients

log = get_logger(__name__)

Sender = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Backoff:
    """Wait ``base * factor**(attempt-1)`` seconds after the ``attempt``-th failure, at most
    ``cap``: with the defaults 30 s, 1, 2, 4, 8, 16, 32 min, then hourly."""

    base: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * self.factor ** max(attempt - 1, 0))


MAX_ATTEMPTS = 10  # ~9 hours of retries with the default backoff
LEASE = dt.timedelta(minutes=5)  # a claimed note is not picked by another worker meanwhile


# ------------------------------------------------------------------ the message


def _local(when: dt.datetime, zone: str) -> dt.datetime:
    try:
        return when.astimezone(ZoneInfo(zone))
    except Exception:  # an unknown zone in old data: UTC rather than no mail
        return when.astimezone(dt.UTC)


def build_message(
    note: m.CallNote,
    client: m.Client,
    recipients: list[str],
    sender: str,
    employee: m.Employee | None = None,
) -> EmailMessage:
    """The e-mail for one note: plain text, times in the client's zone, a stable Message-ID
    per note (a resend after an unknown outcome can be recognised as a duplicate)."""
    created = _local(note.created_at or m.utcnow(), client.timezone)
    who = note.caller_name or note.callback_number or "unknown caller"
    msg = EmailMessage()
    # One line, whatever old rows hold (a line break in a header value raises)
    msg["Subject"] = _one_line(f"Call note for {client.name}: {who}")
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(created)
    domain = sender.rpartition("@")[2] or "asterisk-cube.invalid"
    msg["Message-ID"] = make_msgid(idstring=f"call-note-{note.id}", domain=domain)
    msg["X-Asterisk-Cube-Note"] = str(note.id)
    lines = [
        f"Call note for {client.name}",
        "",
        f"Time:            {created:%Y-%m-%d %H:%M} ({client.timezone})",
        f"Caller:          {note.caller_name or '-'}",
        f"Call back on:    {note.callback_number or '-'}",
    ]
    if employee is not None:
        about = employee.name + (f" ({employee.department})" if employee.department else "")
        lines.append(f"For:             {about}")
    lines += ["", "Message:", note.message, "", f"-- note {note.id}, asterisk-cube"]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _one_line(text: str) -> str:
    """Control characters (line breaks, tabs, NUL) as spaces, runs of spaces as one."""
    return " ".join("".join(" " if control_problem(c) else c for c in text).split())


# ------------------------------------------------------------------ the worker


@dataclass
class _Claimed:
    note_id: int
    attempts: int
    message: EmailMessage | None
    recipients: list[str]
    problem: str | None = None  # a reason it cannot be sent at all (e.g. no recipients)
    permanent: bool = False  # retrying cannot help (the message cannot be built): failed now


class NoteMailer:
    """Sends due notes; ``run()`` loops until cancelled, ``process_due()`` does one pass."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        smtp: SmtpSettings,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        poll_interval: float = 5.0,
        batch: int = 20,
        timeout: float = 30.0,
        now: Callable[[], dt.datetime] = m.utcnow,
        send: Sender | None = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.sessions = sessions
        self.smtp = smtp
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff()
        self.poll_interval = poll_interval
        self.batch = batch
        self.timeout = timeout
        self.now = now
        self.send = send or aiosmtplib.send
        self._wake: asyncio.Event | None = None
        self.sent = 0
        self.failed_attempts = 0
        self.pass_started_at: float | None = None  # time.monotonic(); None: not running
        self.backlog = 0  # notes still pending mail, counted at each pass (metrics)

    # --- loop ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due notes now (call after storing a note in this process)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        log.info("notes_mailer_started", smtp=f"{self.smtp.host}:{self.smtp.port}")
        while True:
            self.pass_started_at = time.monotonic()
            try:
                handled = await self.process_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: try again on the next round
                log.warning("notes_mailer_pass_failed", error=repr(exc))
                handled = 0
            if handled >= self.batch:
                continue  # more may be due right away
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def component(self, state: Any = None) -> None:
        """``Runtime(components={"notes-mail": mailer.component})``."""
        await self.run()

    # --- one pass -----------------------------------------------------------------------

    async def process_due(self) -> int:
        """Claim and send the notes that are due now; returns how many were handled."""
        claimed = await asyncio.to_thread(self._claim_due)
        for item in claimed:
            await self._deliver(item)
        return len(claimed)

    def _claim_due(self) -> list[_Claimed]:
        now = self.now()
        due = and_(
            m.CallNote.mail_status == m.MailStatus.PENDING,
            or_(m.CallNote.mail_next_try_at.is_(None), m.CallNote.mail_next_try_at <= now),
        )
        out: list[_Claimed] = []
        with self.sessions() as s, s.begin():
            self.backlog = (
                s.scalar(
                    select(func.count())
                    .select_from(m.CallNote)
                    .where(m.CallNote.mail_status == m.MailStatus.PENDING)
                )
                or 0
            )
            ids = s.scalars(
                select(m.CallNote.id).where(due).order_by(m.CallNote.id).limit(self.batch)
            ).all()
            for note_id in ids:
                claimed = s.execute(
                    update(m.CallNote)
                    .where(m.CallNote.id == note_id, due)
                    .values(mail_next_try_at=now + LEASE)
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]  # an UPDATE's CursorResult
                if claimed != 1:
                    continue  # another worker took it
                note = s.get_one(m.CallNote, note_id)  # claimed above: it is there
                client = s.get_one(m.Client, note.client_id)
                recipients = note_recipients(s, note)
                if not recipients:
                    out.append(
                        _Claimed(
                            note_id, note.mail_attempts, None, [], "client has no note recipients"
                        )
                    )
                    continue
                employee = s.get(m.Employee, note.employee_id) if note.employee_id else None
                try:
                    message = build_message(note, client, recipients, self.smtp.sender, employee)
                except Exception as exc:  # one bad note must not stop the others' mail
                    problem = f"cannot build the e-mail: {_describe(exc)}"
                    out.append(_Claimed(note_id, note.mail_attempts, None, [], problem, True))
                    continue
                out.append(_Claimed(note_id, note.mail_attempts, message, recipients))
        return out

    async def _deliver(self, item: _Claimed) -> None:
        error = item.problem
        if error is None:
            assert item.message is not None
            try:
                await self.send(
                    item.message,
                    sender=self.smtp.sender,
                    recipients=item.recipients,
                    hostname=self.smtp.host,
                    port=self.smtp.port,
                    username=self.smtp.username or None,
                    password=self.smtp.password or None,
                    start_tls=bool(self.smtp.starttls),
                    timeout=self.timeout,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _describe(exc)
        if error is None:
            await asyncio.to_thread(self._mark_sent, item)
            self.sent += 1
            log.info("note_mailed", note=item.note_id, to=item.recipients)
        else:
            self.failed_attempts += 1
            status = await asyncio.to_thread(self._mark_failed, item, error)
            log.warning(
                "note_mail_failed",
                note=item.note_id,
                attempt=item.attempts + 1,
                status=status.value,
                error=error,
            )

    def _mark_sent(self, item: _Claimed) -> None:
        with self.sessions() as s, s.begin():
            note = s.get_one(m.CallNote, item.note_id)
            note.mail_status = m.MailStatus.SENT
            note.mail_attempts = item.attempts + 1
            note.mail_error = None
            note.mail_next_try_at = None
            note.mailed_at = self.now()

    def _mark_failed(self, item: _Claimed, error: str) -> m.MailStatus:
        with self.sessions() as s, s.begin():
            note = s.get_one(m.CallNote, item.note_id)
            attempts = item.attempts + 1
            note.mail_attempts = attempts
            note.mail_error = redact(error)[:2000]  # an SMTP reply may quote the login
            if attempts >= self.max_attempts or item.permanent:
                note.mail_status = m.MailStatus.FAILED
                note.mail_next_try_at = None
            else:
                delay = dt.timedelta(seconds=self.backoff.delay(attempts))
                note.mail_next_try_at = self.now() + delay
            return note.mail_status


def _describe(exc: Exception) -> str:
    """One line for ``mail_error``: what failed, with the server's reply if there was one."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return f"recipients refused: {refused}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"SMTP {exc.code}: {exc.message}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}".replace("\n", " ")
