"""Answering-service provisioning beyond the client itself (F-S3..F-S6, F-S9): note
recipients, "current" exceptions, employees (and CSV import), FAQ entries and blocklists
(and CSV import). The blocklists are in :mod:`.blocklist` (re-exported here), the CSV
reading both imports share in :mod:`.rows_import`.

Same rules as :mod:`asterisk_cube.services.provisioning`: validate everything first, raise
:class:`ProvisioningError` naming the problem, the caller owns the transaction. Every change
touches the client's ``updated_at`` so running FastAGI entry caches notice it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from asterisk_cube.core.hours import wall_to_aware
from asterisk_cube.db import models as m
from asterisk_cube.services.contact_import import RowError
from asterisk_cube.services.provisioning.clients import touch_client
from asterisk_cube.services.provisioning.common import (
    _EMAIL,
    ProvisioningError,
    _enum_value,
    get_client,
)

from .blocklist import BLOCK_COLUMNS as BLOCK_COLUMNS
from .blocklist import BlockData as BlockData  # re-exported
from .blocklist import add_blocks as add_blocks
from .blocklist import block_rows as block_rows
from .blocklist import check_block as check_block
from .blocklist import import_blocklist as import_blocklist
from .blocklist import remove_block as remove_block
from .contact_import import read_csv_file
from .rows_import import RowsReport, _records, _short_rows


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


# ------------------------------------------------------------------ shared checks

_TARGET = re.compile(r"^(\+?[0-9]{2,20}|[A-Za-z0-9]+/[A-Za-z0-9._@+-]+)$")


def check_target(target: str | None, what: str) -> str | None:
    """A forward target: a number (``+4791234567``) or a dial string (``PJSIP/agent01``)."""
    if target is None or not target.strip():
        return None
    text = re.sub(r"[\s-]", "", target.strip()) if target.strip()[0] in "+0123456789" else target
    if not _TARGET.match(text):
        raise ProvisioningError(
            f"{what} {target!r} must be a phone number or a dial string like PJSIP/agent01"
        )
    return text


def check_handling(
    handling: str | None, forward1: str | None, forward2: str | None, what: str
) -> tuple[m.Handling | None, str | None, str | None]:
    """Handling plus its targets, validated together."""
    kind = _enum_value(m.Handling, handling, f"{what} handling") if handling else None
    t1 = check_target(forward1, f"{what} first forward target")
    t2 = check_target(forward2, f"{what} second forward target")
    if kind == m.Handling.FORWARD and not t1:
        raise ProvisioningError(f"{what}: forward handling needs a first forward target")
    if t2 and not t1:
        raise ProvisioningError(f"{what}: a second forward target needs a first one")
    if kind != m.Handling.FORWARD and (t1 or t2):
        raise ProvisioningError(f"{what}: forward targets need forward handling")
    return kind, t1, t2


def parse_local_time(text: str, zone: str, what: str, end_of_day: bool = False) -> dt.datetime:
    """``YYYY-MM-DD[ HH:MM]`` in the client's zone -> aware UTC. A bare date is the start of
    that day, or with ``end_of_day`` the start of the next one (an inclusive end date)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            if end_of_day:
                day += dt.timedelta(days=1)
            local = dt.datetime.combine(day, dt.time())
        else:
            local = dt.datetime.fromisoformat(raw.replace("T", " "))
    except ValueError:
        raise ProvisioningError(
            f"{what} {text!r} must be YYYY-MM-DD or 'YYYY-MM-DD HH:MM'"
        ) from None
    if local.tzinfo is None:
        local = wall_to_aware(local, ZoneInfo(zone))
    return local.astimezone(dt.UTC)


# ------------------------------------------------------------------ exceptions (F-S3)


def add_exception(
    s: Session,
    client: str,
    instruction: str,
    until: str,
    starts: str | None = None,
    handling: str | None = None,
    forward1: str | None = None,
    forward2: str | None = None,
    now: dt.datetime | None = None,
) -> m.ClientException:
    """A "current" instruction for a period; with a handling it overrides the standard one."""
    text = (instruction or "").strip()
    if not text:
        raise ProvisioningError("the exception's instruction is empty")
    kind, t1, t2 = check_handling(handling, forward1, forward2, "exception")
    row = get_client(s, client)
    now = now or m.utcnow()
    begin = parse_local_time(starts, row.timezone, "start") if starts else now
    end = parse_local_time(until, row.timezone, "end", end_of_day=True)
    if end <= now:
        raise ProvisioningError("the exception's period is already over")
    if end <= begin:
        raise ProvisioningError("the exception ends before it starts")
    exception = m.ClientException(
        starts_at=begin,
        ends_at=end,
        instruction=text,
        handling=kind,
        forward_target1=t1,
        forward_target2=t2,
    )
    row.exceptions.append(exception)
    touch_client(row)
    s.flush()
    return exception


def remove_exception(s: Session, client: str, exception_id: int) -> None:
    row = get_client(s, client)
    found = next((e for e in row.exceptions if e.id == exception_id), None)
    if found is None:
        raise ProvisioningError(f"{row.name} has no exception {exception_id}")
    row.exceptions.remove(found)
    touch_client(row)
    s.flush()


def exception_rows(s: Session, client: str) -> list[dict[str, Any]]:
    row = get_client(s, client)
    zone = ZoneInfo(row.timezone)
    now = m.utcnow()
    return [
        {
            "id": e.id,
            "from": f"{e.starts_at.astimezone(zone):%Y-%m-%d %H:%M}",
            "until": f"{e.ends_at.astimezone(zone):%Y-%m-%d %H:%M}",
            "active": e.starts_at <= now < e.ends_at,
            "handling": e.handling.value if e.handling else "",
            "targets": ",".join(t for t in (e.forward_target1, e.forward_target2) if t),
            "instruction": e.instruction[:60],
        }
        for e in row.exceptions
    ]


# ------------------------------------------------------------------ employees (F-S4)


@dataclass(frozen=True)
class EmployeeData:
    name: str
    department: str = ""
    title: str = ""
    email: str | None = None
    handling: m.Handling = m.Handling.NOTE
    forward1: str | None = None
    forward2: str | None = None
    info: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.name.casefold(), self.department.casefold()


def check_employee(
    name: str,
    department: str = "",
    title: str = "",
    email: str | None = None,
    handling: str | None = None,
    forward1: str | None = None,
    forward2: str | None = None,
    info: str = "",
) -> EmployeeData:
    """Validate one employee/department (pure: no database)."""
    name, department, title = (name or "").strip(), (department or "").strip(), title or ""
    if not name:
        raise ProvisioningError("the employee's name is empty")
    for value, label in ((name, "name"), (department, "department"), (title.strip(), "title")):
        if len(value) > 200:
            raise ProvisioningError(f"the employee's {label} is longer than 200 characters")
    address = check_email(email, "e-mail") if email and email.strip() else None
    kind, t1, t2 = check_handling(handling or "note", forward1, forward2, f"employee {name!r}")
    return EmployeeData(
        name, department, title.strip(), address, kind or m.Handling.NOTE, t1, t2, info or ""
    )


def _employee_row(data: EmployeeData) -> m.Employee:
    return m.Employee(
        name=data.name,
        department=data.department,
        title=data.title,
        email=data.email,
        handling=data.handling,
        forward_target1=data.forward1,
        forward_target2=data.forward2,
        info=data.info,
    )


def add_employee(s: Session, client: str, **fields: Any) -> m.Employee:
    data = check_employee(**fields)
    row = get_client(s, client)
    if any((e.name.casefold(), e.department.casefold()) == data.key for e in row.employees):
        where = f" in {data.department}" if data.department else ""
        raise ProvisioningError(f"{row.name} already has an employee {data.name!r}{where}")
    employee = _employee_row(data)
    row.employees.append(employee)
    touch_client(row)
    s.flush()
    return employee


def get_employee(s: Session, client: m.Client, name: str) -> m.Employee:
    matches = [e for e in client.employees if e.name.casefold() == name.strip().casefold()]
    if not matches:
        raise ProvisioningError(f"{client.name} has no employee named {name!r}")
    if len(matches) > 1:
        raise ProvisioningError(f"{client.name} has several employees named {name!r}")
    return matches[0]


def remove_employee(s: Session, client: str, name: str) -> None:
    row = get_client(s, client)
    row.employees.remove(get_employee(s, row, name))
    touch_client(row)
    s.flush()


def employee_rows(s: Session, client: str) -> list[dict[str, Any]]:
    row = get_client(s, client)
    return [
        {
            "id": e.id,
            "name": e.name,
            "department": e.department,
            "title": e.title,
            "email": e.email or "",
            "handling": e.handling.value,
            "targets": ",".join(t for t in (e.forward_target1, e.forward_target2) if t),
        }
        for e in row.employees
    ]


EMPLOYEE_COLUMNS = {
    "name": ("navn", "employee"),
    "department": ("avdeling", "dept"),
    "title": ("tittel", "stilling"),
    "email": ("e-mail", "e-post", "epost", "mail"),
    "handling": ("behandling",),
    "target1": ("forward1", "mål1", "maal1"),
    "target2": ("forward2", "mål2", "maal2"),
    "info": ("note", "notat", "comment"),
}


def import_employees(
    s: Session,
    client: str,
    path: str | Path,
    valid_only: bool = False,
    replace: bool = False,
) -> RowsReport:
    """Employee list from CSV (columns: name, department, title, email, handling, target1,
    target2, info; only ``name`` required). Every row is validated first; with errors nothing
    is stored unless ``valid_only``. ``replace`` swaps the whole list for the file's."""
    row = get_client(s, client)
    records, errors = _records(read_csv_file(path), EMPLOYEE_COLUMNS, ("name",))
    existing = (
        set() if replace else {(e.name.casefold(), e.department.casefold()) for e in row.employees}
    )
    seen: dict[tuple[str, str], int] = {}
    valid: list[EmployeeData] = []
    for line, rec in records:
        try:
            data = check_employee(
                rec.get("name", ""),
                rec.get("department", ""),
                rec.get("title", ""),
                rec.get("email"),
                (rec.get("handling") or "note").lower(),
                rec.get("target1"),
                rec.get("target2"),
                rec.get("info", ""),
            )
        except ProvisioningError as exc:
            errors.append(RowError(line, str(exc)))
            continue
        if data.key in seen:
            errors.append(RowError(line, f"{data.name!r} repeats row {seen[data.key]}"))
            continue
        if data.key in existing:
            errors.append(RowError(line, f"{row.name} already has an employee {data.name!r}"))
            continue
        seen[data.key] = line
        valid.append(data)
    errors.sort(key=lambda e: e.row)
    report = RowsReport("employees", len(records) + _short_rows(errors), 0, errors)
    if (errors and not valid_only) or not valid:
        return report
    if replace:
        row.employees.clear()
        s.flush()
    row.employees.extend(_employee_row(d) for d in valid)
    touch_client(row)
    s.flush()
    report.imported, report.stored = len(valid), True
    return report


# ------------------------------------------------------------------ FAQ (F-S5)


def add_faq(
    s: Session,
    client: str,
    question: str,
    answer: str,
    handling: str | None = None,
    employee: str | None = None,
    position: int | None = None,
) -> m.FaqEntry:
    q, a = (question or "").strip(), (answer or "").strip()
    if not q:
        raise ProvisioningError("the FAQ question is empty")
    if not a:
        raise ProvisioningError("the FAQ answer is empty")
    kind = _enum_value(m.Handling, handling, "FAQ handling") if handling else None
    row = get_client(s, client)
    linked = get_employee(s, row, employee) if employee else None
    if kind == m.Handling.FORWARD and linked is None and not row.forward_target1:
        raise ProvisioningError(
            "FAQ forward handling needs targets: link an employee with --employee, "
            "or give the client forward targets"
        )
    if position is None:
        position = max((f.position for f in row.faq), default=0) + 1
    entry = m.FaqEntry(
        question=q,
        answer=a,
        handling=kind,
        employee_id=linked.id if linked else None,
        position=position,
    )
    row.faq.append(entry)
    touch_client(row)
    s.flush()
    return entry


def faq_rows(s: Session, client: str) -> list[dict[str, Any]]:
    row = get_client(s, client)
    names = {e.id: e.name for e in row.employees}
    return [
        {
            "id": f.id,
            "position": f.position,
            "question": f.question[:50],
            "answer": f.answer[:50],
            "handling": f.handling.value if f.handling else "",
            "employee": names.get(f.employee_id, "") if f.employee_id else "",
        }
        for f in row.faq
    ]
