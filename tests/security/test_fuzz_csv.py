"""Fuzz pass over the CSV importers (issue #12): contact lists, employee lists and the
blocklist get Hypothesis-made files — known and unknown columns, cells with quotes,
delimiters, control characters, formula starts, our own quote prefix, wrong field counts,
bytes that are not UTF-8 — through the same service calls and transaction as the CLI.

Each file is either imported or refused with a one-line ProvisioningError, never another
exception; and a refused file (an error, or a report with ``stored`` false) leaves the
database exactly as it was. Bounded and derandomized."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from asterisk_cube.db import models as m
from asterisk_cube.db.session import make_engine, make_sessionmaker, transaction, upgrade
from asterisk_cube.services import answering
from asterisk_cube.services import provisioning as p
from asterisk_cube.services.contact_import import import_contacts
from asterisk_cube.services.provisioning import ProvisioningError

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TABLES = (m.Contact, m.ContactList, m.Employee, m.BlocklistEntry, m.Client, m.Campaign)

IMPORTERS = {
    "contacts": (
        ["phone", "name", "company", "email", "city", "tel", "navn"],
        lambda s, path, valid_only: import_contacts(s, "W", path, valid_only=valid_only),
    ),
    "employees": (
        ["name", "department", "title", "email", "handling", "target1", "target2", "info"],
        lambda s, path, valid_only: answering.import_employees(s, "Acme AS", path, valid_only),
    ),
    "blocklist": (
        ["number", "known_advertiser", "reason"],
        lambda s, path, valid_only: answering.import_blocklist(s, path, "Acme AS", valid_only),
    ),
}

cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "91234567", "+4791234567", "'+4791234567", "004791234567", "22*", "12", "",
            "Kari", "=1+2", "'=1+2", "@x", "-", "yes", "no", "note", "forward", "a@b.no",
            "a\nb", "x\x00y", '"', ";", "\t", "\ufeff", "PJSIP/agent01",
        ]
    ),
)  # fmt: skip


phones = st.integers(10_000_000, 99_999_999).map(str) | st.integers(10_000, 99_999).map(
    lambda n: f"'+47912{n}"
)


@st.composite
def csv_files(draw, columns: list[str]) -> bytes:
    roll = draw(st.integers(0, 9))
    if roll == 0:  # now and then: any bytes at all
        return draw(st.binary(max_size=300))
    if roll == 1:  # or any header
        header = draw(st.lists(st.sampled_from(columns) | st.text(max_size=6), max_size=5))
    else:  # mostly a header the importer knows, the required column first
        extra = draw(st.lists(st.sampled_from(columns[1:]), unique=True, max_size=3))
        header = [columns[0], *extra]
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        width = len(header) if draw(st.integers(0, 5)) else draw(st.integers(0, len(header) + 1))
        row = [draw(phones if i == 0 and draw(st.booleans()) else cells) for i in range(width)]
        rows.append(row)
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    text = buf.getvalue()
    if not draw(st.integers(0, 5)):
        text = text.replace('"', "")  # broken quoting too
    return text.encode("utf-8")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz-csv') / 'cube.db'}"
    upgrade(url)
    made = make_sessionmaker(make_engine(url))
    with transaction(made) as s:
        p.add_campaign(s, "W", mode="power")
        p.add_client(s, "Acme AS")
    return made


def stored_text(sessions) -> list[str]:
    """Every text value the imports can write."""
    out: list[str] = []
    with sessions() as s:
        for table in (m.Contact, m.Employee, m.BlocklistEntry):
            for row in s.scalars(select(table)):
                for column in table.__table__.columns:
                    value = getattr(row, column.key)
                    if isinstance(value, dict):
                        out += [*map(str, value), *map(str, value.values())]
                    elif isinstance(value, str):
                        out.append(value)
    return out


def counts(sessions) -> dict[str, int]:
    with sessions() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in TABLES}


@pytest.mark.parametrize("kind", sorted(IMPORTERS))
def test_csv_importers_import_or_refuse_cleanly(sessions, tmp_path, kind):
    columns, run_import = IMPORTERS[kind]
    path = tmp_path / f"{kind}.csv"
    outcomes = {"stored": 0, "refused": 0, "error": 0}

    @FUZZ
    @given(content=csv_files(columns), valid_only=st.booleans())
    def one(content: bytes, valid_only: bool):
        path.write_bytes(content)
        before = counts(sessions)
        try:
            with transaction(sessions) as s:  # as the CLI runs it: commit unless it raises
                report = run_import(s, path, valid_only)
        except ProvisioningError as exc:
            message = str(exc)
            assert message and "\n" not in message and "Traceback" not in message
            assert counts(sessions) == before
            outcomes["error"] += 1
            return
        if not report.stored:
            assert counts(sessions) == before, report.as_dict()
            outcomes["refused"] += 1
        else:
            assert report.imported > 0
            outcomes["stored"] += 1
            for text in stored_text(sessions):  # no NUL, no line break, no escape stored
                assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text), repr(text)
                assert not text.startswith("'+"), text  # our export's quote is read back
        for rejected in report.rejected:
            assert "\n" not in rejected.reason and rejected.row >= 2

    one()
    # the generator reached all three outcomes
    assert all(outcomes.values()), outcomes
