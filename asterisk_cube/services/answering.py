"""Answering-service provisioning beyond the client itself (F-S3..F-S6, F-S9): note
recipients, "current" exceptions, employees (and CSV import), FAQ entries and blocklists
(and CSV import).

Same rules as :mod:`asterisk_cube.services.provisioning`: validate everything first, raise
:class:`ProvisioningError` naming the problem, the caller owns the transaction. Every change
touches the client's ``updated_at`` so running FastAGI entry caches notice it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from asterisk_cube.db import models as m
from asterisk_cube.services.provisioning import (
    _EMAIL,
    ProvisioningError,
    get_client,
    touch_client,
)


def check_email(address: str, what: str = "e-mail") -> str:
    address = address.strip()
    if not _EMAIL.match(address):
        raise ProvisioningError(f"{what} {address!r} is not an e-mail address")
    return address


# ------------------------------------------------------------------ recipients


def add_recipients(s: Session, client: str, emails: Iterable[str]) -> list[str]:
    """Add note recipients; returns the addresses actually added (others were there)."""
    addresses = [check_email(e, "recipient") for e in emails]
    if not addresses:
        raise ProvisioningError("give at least one e-mail address")
    row = get_client(s, client)
    have = {r.email.lower() for r in row.recipients}
    added = []
    for address in dict.fromkeys(addresses):
        if address.lower() not in have:
            row.recipients.append(m.NoteRecipient(email=address))
            have.add(address.lower())
            added.append(address)
    touch_client(row)
    s.flush()
    return added


def remove_recipients(s: Session, client: str, emails: Iterable[str]) -> None:
    row = get_client(s, client)
    by_address = {r.email.lower(): r for r in row.recipients}
    wanted = [e.strip() for e in emails]
    missing = [e for e in wanted if e.lower() not in by_address]
    if missing:
        raise ProvisioningError(f"{missing[0]!r} is not a note recipient of {row.name}")
    for address in wanted:
        row.recipients.remove(by_address[address.lower()])
    touch_client(row)
    s.flush()
