"""Reading a CSV of rows for the answering service's imports (employees, blocklists): the
file's text, its columns by name or alias, numbered records, and the import's report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asterisk_cube.services.contact_import import MAX_ROWS, RowError, _read, row_problem
from asterisk_cube.services.provisioning.common import ProvisioningError


@dataclass
class RowsReport:
    """The result of a CSV import: rejected rows by line number, whether anything was stored."""

    what: str
    rows_read: int = 0
    imported: int = 0
    rejected: list[RowError] = field(default_factory=list)
    stored: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "rows_read": self.rows_read,
            "imported": self.imported,
            "rejected": [{"row": e.row, "reason": e.reason} for e in self.rejected],
            "stored": self.stored,
        }


def _columns(
    header: list[str], aliases: dict[str, tuple[str, ...]], required: tuple[str, ...]
) -> dict[str, int]:
    """Map our field names to column indexes; unknown columns are an error (typos)."""
    lower = [h.strip().lower() for h in header]
    if len(set(lower)) != len(lower):
        raise ProvisioningError("the CSV header has duplicate column names")
    index: dict[str, int] = {}
    known = {alias: name for name, names in aliases.items() for alias in (name, *names)}
    for i, col in enumerate(lower):
        if col not in known:
            raise ProvisioningError(
                f"unknown CSV column {header[i].strip()!r} (expected: {', '.join(aliases)})"
            )
        if known[col] in index:
            raise ProvisioningError(f"the CSV header names {known[col]!r} twice")
        index[known[col]] = i
    for name in required:
        if name not in index:
            raise ProvisioningError(
                f"the CSV header has no {name!r} column; found: {', '.join(header) or 'nothing'}"
            )
    return index


def _records(text: str, aliases, required) -> tuple[list[tuple[int, dict[str, str]]], list]:
    """(line, {field: value}) per non-blank row, plus rows with a wrong field count."""
    header, rows = _read(text)
    index = _columns(header, aliases, required)
    records, errors = [], []
    for line, values in rows:
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append(RowError(line, f"has {len(values)} fields, the header has {len(header)}"))
            continue
        problem = row_problem(header, values)
        if problem:
            errors.append(RowError(line, problem))
            continue
        records.append((line, {name: values[i].strip() for name, i in index.items()}))
    if len(rows) > MAX_ROWS:
        raise ProvisioningError(f"the CSV file has {len(rows)} rows; the limit is {MAX_ROWS}")
    if not records and not errors:
        raise ProvisioningError("the CSV file has a header but no rows")
    return records, errors


def _short_rows(errors: list[RowError]) -> int:
    return sum(1 for e in errors if "fields, the header has" in e.reason)
