"""The answering service at the agent desktop (F-S1, F-S9): the client's language for the
script, and a call note's fields checked against the client before the distributor stores
it. ``web/answering.py`` only translates HTTP; the lookups live here.

Every function takes the caller's session; refusals are :class:`NoClient` and
:class:`NoteRefused` (the field and a ``code`` the web turns into a message in the agent's
language).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from asterisk_cube.core.script import CallbackCheck, check_callback_number
from asterisk_cube.db import models as m
from asterisk_cube.services.notes import NoteError, check_callback, client_own_numbers

DEFAULT_LANGUAGE = "nb"  # a client without one: what the script has always said


class NoClient(LookupError):
    """No client with this id (deleted while the call went on)."""


class NoteRefused(ValueError):
    """A note field refused: ``field`` names it, ``code`` says why (own_number |
    invalid_number | not_employee), ``values`` fill the message."""

    def __init__(self, field: str, code: str, **values: Any) -> None:
        super().__init__(f"{field}: {code}")
        self.field, self.code, self.values = field, code, values


def _client(s: Session, client_id: int) -> m.Client:
    client = s.get(m.Client, client_id)
    if client is None:
        raise NoClient(f"no client {client_id}")
    return client


def client_language(s: Session, client_id: int) -> str:
    """The language the agent speaks to this client's callers (``clients.language``)."""
    return _client(s, client_id).language or DEFAULT_LANGUAGE


def check_note_input(s: Session, client_id: int, callback: str, employee_id: int | None) -> None:
    """Refuse a callback number that is the client's own or not a phone number, and an
    employee of another client."""
    client = _client(s, client_id)
    if callback:
        verdict = check_callback_number(
            callback, client_own_numbers(client), client.phone_region or "NO"
        )
        if verdict.result is CallbackCheck.OWN_NUMBER:
            raise NoteRefused(
                "callback_number", "own_number", number=verdict.number, client=client.name
            )
        try:
            check_callback(client, callback)
        except NoteError:
            raise NoteRefused("callback_number", "invalid_number") from None
    if employee_id is not None:
        employee = s.get(m.Employee, employee_id)
        if employee is None or employee.client_id != client.id:
            raise NoteRefused("employee_id", "not_employee")
