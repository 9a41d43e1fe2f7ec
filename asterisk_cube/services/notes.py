"""Call notes for answering-service clients (F-S9): validate, store, list, resend.

A note is stored first and mailed afterwards by :mod:`asterisk_cube.services.mailer`; the
stored row is the truth (``mail_status`` pending / sent / failed), so a note is never lost
because the mail server is away. The agent cannot give the client's own number as the
callback number: the client's ``own_numbers`` *and* its answering-service lines (the number
the caller dialed, shown on the agent's screen) are refused.

Like provisioning, every function validates all input before touching the session and
raises :class:`NoteError` (a ``ProvisioningError``) with a message naming the problem.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.core.numbers import is_withheld
from asterisk_cube.core.script import CallbackCheck, check_callback_number
from asterisk_cube.core.text import control_problem
from asterisk_cube.db import models as m
from asterisk_cube.services.provisioning import ProvisioningError, get_client

MAX_MESSAGE = 10_000
MAX_NAME = 200


class NoteError(ProvisioningError):
    """A note that cannot be stored; the message says why."""


def client_own_numbers(client: m.Client) -> list[str]:
    """Numbers the client cannot be called back on: its own numbers and its lines' DIDs."""
    return [*(client.own_numbers or []), *(line.did for line in client.lines)]


def check_callback(client: m.Client, number: str | None) -> str:
    """The callback number in E.164 form ("" when none is given); raises NoteError."""
    text = (number or "").strip()
    if not text:
        return ""
    if is_withheld(text):
        raise NoteError(f"callback number {text!r} is not a phone number")
    verdict = check_callback_number(text, client_own_numbers(client), client.phone_region)
    if verdict.result is CallbackCheck.INVALID:
        raise NoteError(
            f"callback number {text!r} is not a phone number (digits, optional leading +)"
        )
    if verdict.result is CallbackCheck.OWN_NUMBER:
        raise NoteError(
            f"callback number {verdict.number} is {client.name}'s own number: "
            "ask the caller for a number where they can be reached"
        )
    assert verdict.number is not None
    digits = len(verdict.number) - 1
    if not 5 <= digits <= 15:
        raise NoteError(f"callback number {text!r} is not a valid phone number")
    return verdict.number


def create_note(
    s: Session,
    client: str | int,
    message: str,
    *,
    caller_name: str = "",
    callback_number: str | None = None,
    employee_id: int | None = None,
    agent_id: int | None = None,
    call_id: int | None = None,
) -> m.CallNote:
    """Validate and store a note; the mail worker sends it (status ``pending``)."""
    row = s.get(m.Client, client) if isinstance(client, int) else get_client(s, client)
    if row is None:
        raise NoteError(f"no client with id {client}")
    text = (message or "").strip()
    if not text:
        raise NoteError("the note's message is empty")
    if len(text) > MAX_MESSAGE:
        raise NoteError(f"the note's message is longer than {MAX_MESSAGE} characters")
    name = (caller_name or "").strip()
    if len(name) > MAX_NAME:
        raise NoteError(f"the caller's name is longer than {MAX_NAME} characters")
    for what, value, multiline in (
        ("the note's message", text, True),
        ("the caller's name", name, False),
        ("the callback number", callback_number or "", False),
    ):
        problem = control_problem(value, multiline=multiline)
        if problem:
            raise NoteError(f"{what} {problem}")
    number = check_callback(row, callback_number)
    if employee_id is not None:
        employee = s.get(m.Employee, employee_id)
        if employee is None or employee.client_id != row.id:
            raise NoteError(f"employee {employee_id} does not belong to {row.name}")
    if agent_id is not None and s.get(m.Agent, agent_id) is None:
        raise NoteError(f"no agent with id {agent_id}")
    if call_id is not None and s.get(m.Call, call_id) is None:
        raise NoteError(f"no call with id {call_id}")
    note = m.CallNote(
        client_id=row.id,
        call_id=call_id,
        agent_id=agent_id,
        employee_id=employee_id,
        caller_name=name,
        callback_number=number,
        message=text,
        mail_status=m.MailStatus.PENDING,
        mail_attempts=0,
    )
    s.add(note)
    s.flush()
    return note


def note_recipients(s: Session, note: m.CallNote) -> list[str]:
    """The client's note recipients, plus the employee's own address for an employee note."""
    client = s.get(m.Client, note.client_id)
    addresses = [r.email for r in client.recipients] if client else []
    if note.employee_id is not None:
        employee = s.get(m.Employee, note.employee_id)
        if employee is not None and employee.email:
            addresses.append(employee.email)
    return list(dict.fromkeys(a.strip() for a in addresses if a and a.strip()))


def resend_notes(
    s: Session, note_ids: list[int] | None = None, client: str | None = None
) -> list[int]:
    """Put failed notes (or the given ones, unless already sent) back in the mail queue with
    a fresh attempt count. Returns the ids requeued."""
    query = select(m.CallNote)
    if note_ids:
        query = query.where(m.CallNote.id.in_(note_ids))
        found = {n.id: n for n in s.scalars(query)}
        missing = [i for i in note_ids if i not in found]
        if missing:
            raise NoteError(f"no note with id {missing[0]}")
        sent = [i for i in note_ids if found[i].mail_status == m.MailStatus.SENT]
        if sent:
            raise NoteError(f"note {sent[0]} was already sent")
        notes = [found[i] for i in note_ids]
    else:
        query = query.where(m.CallNote.mail_status == m.MailStatus.FAILED)
        if client:
            query = query.where(m.CallNote.client_id == get_client(s, client).id)
        notes = list(s.scalars(query.order_by(m.CallNote.id)))
    for note in notes:
        note.mail_status = m.MailStatus.PENDING
        note.mail_attempts = 0
        note.mail_next_try_at = None
    s.flush()
    return [n.id for n in notes]


@dataclass(frozen=True)
class NoteFilter:
    client: str | None = None
    status: str | None = None  # pending | sent | failed
    limit: int = 50


def note_rows(s: Session, flt: NoteFilter) -> list[dict[str, Any]]:
    query = select(m.CallNote, m.Client.name).join(m.Client, m.Client.id == m.CallNote.client_id)
    if flt.client:
        query = query.where(m.CallNote.client_id == get_client(s, flt.client).id)
    if flt.status:
        try:
            status = m.MailStatus(flt.status)
        except ValueError:
            raise NoteError(f"status must be pending, sent or failed; got {flt.status!r}") from None
        query = query.where(m.CallNote.mail_status == status)
    rows = []
    for note, client_name in s.execute(query.order_by(m.CallNote.id.desc()).limit(flt.limit)):
        rows.append(
            {
                "id": note.id,
                "client": client_name,
                "created": _minutes(note.created_at),
                "caller": note.caller_name,
                "callback": note.callback_number,
                "status": note.mail_status.value,
                "attempts": note.mail_attempts,
                "next_try": _minutes(note.mail_next_try_at)
                if note.mail_status == m.MailStatus.PENDING
                else "",
                "error": (note.mail_error or "")[:80]
                if note.mail_status != m.MailStatus.SENT
                else "",
                "message": note.message[:60],
            }
        )
    return rows


def _minutes(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else ""
