"""24:00 is stored as 00:00 (the next midnight), no longer as 23:59:59

Until now "00:00-24:00" (and any interval ending 24:00) was stored with the end
23:59:59, so a client open around the clock was closed for one second each night
and a calling window ended one second early. An interval's end at or before its
start runs to the next day (asterisk_cube.core.hours.Interval), so 00:00 is the
exact end of the day. People can only type HH:MM, so 23:59:59 only ever came from
"24:00": this rewrites it in opening hours, special days and calling windows.

Revision ID: 0003_midnight
Revises: 0002
Create Date: 2026-12-06 02:40:00
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = '0003_midnight'
down_revision = '0002'
branch_labels = None
depends_on = None

_COLUMNS = (("opening_hours", "closes"), ("special_days", "closes"), ("calling_windows", "ends"))
_OLD, _NEW = dt.time(23, 59, 59), dt.time(0)


def _rewrite(old: dt.time, new: dt.time) -> None:
    for table, column in _COLUMNS:
        col = sa.column(column, sa.Time())
        op.execute(sa.table(table, col).update().where(col == old).values({column: new}))


def upgrade() -> None:
    _rewrite(_OLD, _NEW)


def downgrade() -> None:
    # Only ends at midnight go back; the old code read 00:00 as "closed at midnight".
    _rewrite(_NEW, _OLD)
