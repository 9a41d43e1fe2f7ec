"""Text that crosses the edge: control characters, and CSV cells a spreadsheet would run.

Control characters (issue #12 item 9). A line break in a caller's name ends up in an e-mail
Subject, a log line or a CSV cell, where it breaks the format or forges a header. Every text
field is checked where it enters (web JSON/forms, CLI arguments, CSV imports) with
:func:`control_problem`: one-line fields take no control character at all (Unicode category
``Cc``, plus the line and paragraph separators U+2028/U+2029); multi-line fields (a note's
message, a comment, a FAQ answer) also take line feed, carriage return and tab.

CSV injection (issue #12 item 10, the OWASP rule). A spreadsheet runs a cell that starts
with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a formula. Every CSV the product
writes goes through :func:`csv_text`, which prefixes such a cell with a single quote
(``'``). Phone numbers in E.164 start with ``+`` and get the quote too (``'+4721000001``):
a spreadsheet shows the number as text (which also keeps it from turning into
4.721E+09), and our CSV importers drop that one leading quote again
(:func:`unquote_cell`), so an export re-imports cleanly. Numbers (int, float, Decimal) are written
as they are: a negative number is data, not a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import numbers
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: What a multi-line field may hold besides printable text.
MULTILINE_ALLOWED = frozenset("\n\r\t")
_SEPARATORS = frozenset("\u2028\u2029")

#: A cell starting with one of these is a formula to a spreadsheet (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def control_problem(text: str, *, multiline: bool = False) -> str | None:
    """Why ``text`` is refused ("contains a control character (U+000A)"), or None."""
    for ch in text:
        if multiline and (ch in MULTILINE_ALLOWED or ch in _SEPARATORS):
            continue
        if ch in _SEPARATORS or unicodedata.category(ch) == "Cc":
            return f"contains a control character (U+{ord(ch):04X})"
    return None


# ------------------------------------------------------------------ CSV


def safe_cell(value: Any) -> Any:
    """One CSV cell: ``None`` as empty, dates as ISO, formula-like text quote-prefixed."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number):  # bool and Decimal too: written as csv writes them
        return value
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_START):
        return QUOTE + text
    return text


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """The CSV document (header, then one line per row) every CSV output of the product uses."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def unquote_cell(text: str) -> str:
    """Undo :func:`safe_cell` for an imported cell: ``'+4721000001`` -> ``+4721000001``."""
    if text.startswith(QUOTE) and text[1:2] and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text
