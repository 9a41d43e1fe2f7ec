"""Blocklists (F-S6): numbers and patterns an answering-service client (or every client)
rejects, added one by one or imported from CSV, listed for the CLI. Part of the answering
service's API: :mod:`asterisk_cube.services.answering` re-exports it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.core.numbers import DEFAULT_REGION, InvalidNumber, is_withheld, parse_pattern
from asterisk_cube.db import models as m
from asterisk_cube.services.contact_import import RowError
from asterisk_cube.services.provisioning.clients import touch_client
from asterisk_cube.services.provisioning.common import ProvisioningError, get_client

from .contact_import import read_csv_file
from .rows_import import RowsReport, _records, _short_rows

# ------------------------------------------------------------------ blocklists (F-S6)


@dataclass(frozen=True)
class BlockData:
    number: str  # E.164 number or "+"-prefix
    kind: m.MatchKind
    known_advertiser: bool = False
    reason: str = ""

    @property
    def text(self) -> str:
        return self.number + ("*" if self.kind == m.MatchKind.PREFIX else "")


def check_block(
    raw: str, region: str = DEFAULT_REGION, known_advertiser: bool = False, reason: str = ""
) -> BlockData:
    """``+4791234567`` (exact) or ``+4782*`` (every number starting so); national numbers are
    read in ``region``. Refuses withheld/empty values and implausible lengths."""
    text = (raw or "").strip()
    if not text:
        raise ProvisioningError("the number is empty")
    if is_withheld(text.rstrip("*")):
        raise ProvisioningError(
            f"{text!r} is not a number (anonymous callers are blocked with the client's "
            "anonymous rule, not a list entry)"
        )
    if re.search(r"[^\d\s+().*-]", text) or "*" in text[:-1]:
        raise ProvisioningError(
            f"{text!r} is not a number or prefix (digits, optional leading +, trailing * "
            "for a prefix)"
        )
    try:
        pattern = parse_pattern(text, region)
    except InvalidNumber as exc:
        raise ProvisioningError(str(exc)) from None
    digits = len(pattern.value) - 1
    low = 2 if pattern.prefix else 7  # +47 and a 5-digit short number
    if not low <= digits <= 15:
        what = "prefix" if pattern.prefix else "number"
        raise ProvisioningError(f"{text!r} is not a plausible {what} ({digits} digits)")
    if len(reason) > 200:
        raise ProvisioningError("the reason is longer than 200 characters")
    kind = m.MatchKind.PREFIX if pattern.prefix else m.MatchKind.EXACT
    return BlockData(pattern.value, kind, known_advertiser, reason.strip())


def _list_owner(s: Session, client: str | None) -> tuple[m.Client | None, str]:
    row = get_client(s, client) if client else None
    return row, (row.phone_region if row else DEFAULT_REGION)


def _existing_blocks(s: Session, owner: m.Client | None) -> dict[tuple[str, str], m.BlocklistEntry]:
    query = select(m.BlocklistEntry).where(
        m.BlocklistEntry.client_id.is_(None)
        if owner is None
        else m.BlocklistEntry.client_id == owner.id
    )
    return {(b.number, b.kind.value): b for b in s.scalars(query)}


def add_blocks(
    s: Session,
    numbers: Iterable[str],
    client: str | None = None,
    known_advertiser: bool = False,
    reason: str = "",
) -> list[m.BlocklistEntry]:
    """Add numbers/prefixes to a client's list, or to the global list (``client`` None)."""
    owner, region = _list_owner(s, client)
    items = [check_block(n, region, known_advertiser, reason) for n in numbers]
    if not items:
        raise ProvisioningError("give at least one number")
    existing = _existing_blocks(s, owner)
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item.number, item.kind.value)
        if key in existing or key in seen:
            where = f"{owner.name}'s blocklist" if owner else "the global blocklist"
            raise ProvisioningError(f"{item.text} is already on {where}")
        seen.add(key)
    rows = [
        m.BlocklistEntry(
            client_id=owner.id if owner else None,
            number=i.number,
            kind=i.kind,
            known_advertiser=i.known_advertiser,
            reason=i.reason,
        )
        for i in items
    ]
    s.add_all(rows)
    if owner is not None:
        touch_client(owner)
    s.flush()
    return rows


def remove_block(s: Session, number: str, client: str | None = None) -> None:
    owner, region = _list_owner(s, client)
    item = check_block(number, region)
    entry = _existing_blocks(s, owner).get((item.number, item.kind.value))
    if entry is None:
        where = f"{owner.name}'s blocklist" if owner else "the global blocklist"
        raise ProvisioningError(f"{item.text} is not on {where}")
    s.delete(entry)
    if owner is not None:
        touch_client(owner)
    s.flush()


BLOCK_COLUMNS = {
    "number": ("phone", "nummer", "telefon", "prefix"),
    "known_advertiser": ("advertiser", "annonsør", "kind_of_caller"),
    "reason": ("grunn", "comment", "kommentar"),
}
_TRUE = {"1", "yes", "y", "true", "ja", "j", "x"}
_FALSE = {"", "0", "no", "n", "false", "nei"}


def import_blocklist(
    s: Session,
    path: str | Path,
    client: str | None = None,
    valid_only: bool = False,
    advertiser_default: bool = False,
) -> RowsReport:
    """Blocklist from CSV (columns: number — ``*`` suffix for a prefix —, known_advertiser
    yes/no, reason). Validated entirely first; with errors nothing is stored unless
    ``valid_only``. Entries already on the list are reported as rejected rows."""
    owner, region = _list_owner(s, client)
    records, errors = _records(read_csv_file(path), BLOCK_COLUMNS, ("number",))
    existing = _existing_blocks(s, owner)
    seen: dict[tuple[str, str], int] = {}
    valid: list[BlockData] = []
    for line, rec in records:
        flag = rec.get("known_advertiser", "").strip().lower()
        if flag not in _TRUE | _FALSE:
            errors.append(RowError(line, f"known_advertiser must be yes or no, got {flag!r}"))
            continue
        try:
            item = check_block(
                rec["number"],
                region,
                flag in _TRUE or (advertiser_default and flag == ""),
                rec.get("reason", ""),
            )
        except ProvisioningError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        key = (item.number, item.kind.value)
        if key in seen:
            errors.append(RowError(line, f"{item.text} repeats row {seen[key]}"))
            continue
        if key in existing:
            errors.append(RowError(line, f"{item.text} is already on the list"))
            continue
        seen[key] = line
        valid.append(item)
    errors.sort(key=lambda e: e.row)
    report = RowsReport("blocklist", len(records) + _short_rows(errors), 0, errors)
    if (errors and not valid_only) or not valid:
        return report
    s.execute(
        m.table_of(m.BlocklistEntry).insert(),
        [
            {
                "client_id": owner.id if owner else None,
                "number": i.number,
                "kind": i.kind.value,
                "known_advertiser": i.known_advertiser,
                "reason": i.reason,
                "created_at": m.utcnow(),
            }
            for i in valid
        ],
    )
    if owner is not None:
        touch_client(owner)
    s.flush()
    report.imported, report.stored = len(valid), True
    return report


def block_rows(s: Session, client: str | None = None, everything: bool = False) -> list[dict]:
    query = select(m.BlocklistEntry, m.Client.name).outerjoin(
        m.Client, m.Client.id == m.BlocklistEntry.client_id
    )
    if not everything:
        owner, _ = _list_owner(s, client)
        query = query.where(
            m.BlocklistEntry.client_id.is_(None)
            if owner is None
            else m.BlocklistEntry.client_id == owner.id
        )
    return [
        {
            "id": b.id,
            "list": name or "global",
            "entry": b.number + ("*" if b.kind == m.MatchKind.PREFIX else ""),
            "known_advertiser": b.known_advertiser,
            "reason": b.reason,
        }
        for b, name in s.execute(query.order_by(m.BlocklistEntry.client_id, m.BlocklistEntry.id))
    ]
