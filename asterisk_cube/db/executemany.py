"""One prebuilt Core statement over many rows, as the driver's ``executemany`` of SQL
compiled once (issue #19).

The journal's worker writes about ten rows per call in a handful of executemany
statements (``acd.records.write_records``, ``persist_agents``). Through
``Connection.execute`` SQLAlchemy re-does per execution what does not change between
them: the compiled-cache lookup, the execution context, ``construct_params`` per row and
its bind processing; in the inbound bench that was about half of the journal's CPU. Here a
statement is compiled once per dialect and column set (``ClauseElement.compile`` with
``column_keys``), each column's bind processor is taken once (``TypeEngine.dialect_impl``
and ``bind_processor``: enums, UTC datetimes, JSON) and the rows go through
``Connection.exec_driver_sql`` on the session's connection: the same transaction, the
same cursor events, the same SQL. An INSERT's columns the rows leave out get their scalar
default, as SQLAlchemy would bind it; a statement that needs a value computed at
execution (a callable or SQL column default, an ``onupdate``) runs the ordinary way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult

Processor = Callable[[Any], Any] | None
# (statement, dialect name, column names) -> (SQL, bind names in order, processors,
# positional, the values of the columns the rows leave out) or None: the ordinary way
_Plan = tuple[str, tuple[str, ...], tuple[Processor, ...], bool, dict[str, Any]]
_PLANS: dict[tuple[Any, str, tuple[str, ...]], _Plan | None] = {}


def _constants(statement: Any, missing: set[str]) -> dict[str, Any] | None:
    """What SQLAlchemy would bind for the columns an INSERT's rows leave out: their scalar
    defaults (None if one is computed at execution: a callable, a SQL expression)."""
    if not missing:
        return {}
    if not getattr(statement, "is_insert", False):
        return None
    out = {}
    for name in missing:
        column = statement.table.c.get(name)
        default = getattr(column, "default", None)
        if default is None or not default.is_scalar:
            return None
        out[name] = default.arg
    return out


def _plan(conn: Connection, statement: Any, keys: tuple[str, ...]) -> _Plan | None:
    dialect = conn.dialect
    cache_key = (statement, dialect.name, keys)
    if cache_key in _PLANS:
        return _PLANS[cache_key]
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
    constants = _constants(statement, set(names) - set(keys))
    plan: _Plan | None = None
    if (
        constants is not None
        and not compiled.literal_execute_params
        and not compiled.escaped_bind_names
    ):
        processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        )
        plan = (compiled.string, names, processors, bool(compiled.positional), constants)
    _PLANS[cache_key] = plan
    return plan


def executemany(conn: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> Any:
    """Execute ``statement`` once per row of ``rows`` (every row with the same keys) on
    ``conn``; returns the result (its ``rowcount``: the rows changed, summed)."""
    if not rows:
        return None
    keys = tuple(sorted(rows[0]))
    plan = _plan(conn, statement, keys)
    if plan is None:
        return conn.execute(statement, list(rows))
    sql, names, processors, positional, constants = plan
    pairs = tuple(zip(names, processors, strict=True))
    if constants:
        rows = [{**constants, **row} for row in rows]
    if positional:
        params: list[Any] = [tuple(p(row[n]) if p else row[n] for n, p in pairs) for row in rows]
    else:
        params = [{n: p(row[n]) if p else row[n] for n, p in pairs} for row in rows]
    result: CursorResult[Any] = conn.exec_driver_sql(sql, params)
    return result
