"""Contact lists from CSV (F-D1): validate every row, then write in one transaction.

The file must have a header row with a ``phone`` column (``number``,
``telefon``, ``telefonnummer`` and ``tel`` are accepted too); ``name``,
``company`` and ``email`` are recognised and every other column is kept in the
contact's ``extra`` data for the screen pop.

Two policies: ``all_or_nothing`` (default) stores nothing if any row is
rejected; ``valid_only`` stores the valid rows and reports the rest. Either
way the report lists each rejected row's number and reason.

A cell with a control character (NUL, a line break inside a quoted field, ...) rejects its
row; a field over csv's 128 KiB limit refuses the file. A cell our own CSV export
quote-prefixed (``'+4721000001``, docs/reports.md) is read without that quote.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from asterisk_cube.core.numbers import InvalidNumber, check_typed, normalize
from asterisk_cube.core.text import control_problem, unquote_cell
from asterisk_cube.db import models as m
from asterisk_cube.services.provisioning import ProvisioningError, get_campaign

PHONE_COLUMNS = ("phone", "number", "telefon", "telefonnummer", "tel", "mobile", "mobil")
KNOWN = {
    "name": "name",
    "navn": "name",
    "company": "company",
    "firma": "company",
    "email": "email",
    "e-post": "email",
}
MAX_ROWS = 200_000


@dataclass
class RowError:
    row: int  # 1-based line number in the file, the header being row 1
    reason: str


@dataclass
class ImportReport:
    campaign: str
    rows_read: int = 0
    imported: int = 0
    rejected: list[RowError] = field(default_factory=list)
    stored: bool = False
    list_id: int | None = None

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "rejected": [{"row": e.row, "reason": e.reason} for e in self.rejected],
            "stored": self.stored,
            "list_id": self.list_id,
        }


@dataclass
class _Row:
    line: int
    phone: str
    name: str | None
    company: str | None
    email: str | None
    extra: dict[str, str]


def read_csv_file(path: str | Path) -> str:
    """A CSV file's text (UTF-8, a BOM allowed), or one line that says why not."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ProvisioningError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise ProvisioningError(f"{path} is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise ProvisioningError(f"{path} is not UTF-8 text") from None


def _read(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
        rows = [(reader.line_num, [unquote_cell(v) for v in r]) for r in reader]
    except StopIteration:
        raise ProvisioningError("the CSV file is empty") from None
    except csv.Error as exc:  # e.g. a field over csv's limit of 128 KiB
        where = f"the CSV file is not readable at line {reader.line_num}"
        raise ProvisioningError(f"{where}: {exc}") from None
    header = [h.strip() for h in header]
    for name in header:
        problem = control_problem(name)
        if problem:
            raise ProvisioningError(f"the CSV header {name!r} {problem}")
    return header, rows


def row_problem(header: list[str], values: list[str]) -> str | None:
    """Why a row is refused for its text (a cell with a control character), or None."""
    for name, value in zip(header, values, strict=False):
        problem = control_problem(value)
        if problem:
            return f"{name or 'a column'} {problem}"
    return None


def validate_csv(
    text: str, region: str, existing_phones: set[str] | frozenset[str] = frozenset()
) -> tuple[list[_Row], list[RowError], int]:
    """Pure validation: (valid rows, rejected rows, rows read)."""
    header, rows = _read(text)
    lower = [h.lower() for h in header]
    phone_idx = next((lower.index(c) for c in PHONE_COLUMNS if c in lower), None)
    if phone_idx is None:
        raise ProvisioningError(
            f"the CSV header has no phone column (expected one of: {', '.join(PHONE_COLUMNS)}); "
            f"found: {', '.join(header) or 'nothing'}"
        )
    if len(set(lower)) != len(lower):
        raise ProvisioningError("the CSV header has duplicate column names")
    if len(rows) > MAX_ROWS:
        raise ProvisioningError(f"the CSV file has {len(rows)} rows; the limit is {MAX_ROWS}")
    valid: list[_Row] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    read = 0
    for line, values in rows:
        if not any(v.strip() for v in values):
            continue  # blank line
        read += 1
        if len(values) != len(header):
            errors.append(RowError(line, f"has {len(values)} fields, the header has {len(header)}"))
            continue
        problem = row_problem(header, values)
        if problem:
            errors.append(RowError(line, problem))
            continue
        raw_phone = values[phone_idx].strip()
        if not raw_phone:
            errors.append(RowError(line, "phone is empty"))
            continue
        try:  # letters make it a typo: 12ab34 is refused, never stored as +471234
            phone = normalize(check_typed(raw_phone), region)
        except InvalidNumber:
            phone = None
        digits = len(phone or "") - 1
        if phone is None or not 5 <= digits <= 15:
            errors.append(RowError(line, f"phone {raw_phone!r} is not a valid number"))
            continue
        if phone in seen:
            errors.append(RowError(line, f"phone {phone} repeats row {seen[phone]}"))
            continue
        if phone in existing_phones:
            errors.append(
                RowError(line, f"phone {phone} is already an open contact in this campaign")
            )
            continue
        seen[phone] = line
        fields: dict[str, str | None] = {"name": None, "company": None, "email": None}
        extra: dict[str, str] = {}
        for i, (key, value) in enumerate(zip(lower, values, strict=True)):
            if i == phone_idx:
                continue
            value = value.strip()
            if key in KNOWN:
                fields[KNOWN[key]] = value or None
            elif value:
                extra[header[i]] = value
        email = fields["email"]
        if email and "@" not in email:
            errors.append(RowError(line, f"email {email!r} is not an e-mail address"))
            continue
        valid.append(_Row(line, phone, fields["name"], fields["company"], email, extra))
    if read == 0:
        raise ProvisioningError("the CSV file has a header but no rows")
    return valid, errors, read


def import_contacts(
    s: Session,
    campaign_name: str,
    path: str | Path,
    valid_only: bool = False,
    list_name: str | None = None,
) -> ImportReport:
    """Validate the whole file, then store it (or nothing) within the caller's transaction."""
    campaign = get_campaign(s, campaign_name)
    path = Path(path)
    text = read_csv_file(path)
    open_states = (
        m.ContactStatus.NEW,
        m.ContactStatus.NOT_ANSWERED,
        m.ContactStatus.CALLBACK,
        m.ContactStatus.DIALING,
    )
    existing = set(
        s.scalars(
            select(m.Contact.phone).where(
                m.Contact.campaign_id == campaign.id, m.Contact.status.in_(open_states)
            )
        )
    )
    valid, errors, read = validate_csv(text, campaign.phone_region, existing)
    report = ImportReport(campaign=campaign.name, rows_read=read, rejected=errors)
    if errors and not valid_only:
        return report
    if not valid:
        return report
    contact_list = m.ContactList(
        campaign_id=campaign.id,
        name=list_name or path.name,
        source=str(path),
        rows_imported=len(valid),
        rows_rejected=len(errors),
    )
    s.add(contact_list)
    s.flush()
    s.execute(
        m.table_of(m.Contact).insert(),
        [
            {
                "campaign_id": campaign.id,
                "list_id": contact_list.id,
                "phone": r.phone,
                "name": r.name,
                "company": r.company,
                "email": r.email,
                "extra": r.extra,
                "status": m.ContactStatus.NEW.value,
                "attempts": 0,
                "created_at": m.utcnow(),
            }
            for r in valid
        ],
    )
    report.imported = len(valid)
    report.stored = True
    report.list_id = contact_list.id
    return report
