"""config_version: one row every configuration change bumps

Every provisioning write (CLI, panel) bumps config_version.version in its own
transaction (asterisk_cube/db/config_version.py); each running `serve` polls the
row once a second (and on PostgreSQL also LISTENs for the NOTIFY sent with the
bump) and reloads its in-memory configuration when it changed.

Revision ID: 0003_config_version
Revises: 0003_session_version
Create Date: 2026-12-06 02:40:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0003_config_version'
down_revision = '0003_session_version'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'config_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_config_version')),
    )
    op.bulk_insert(table, [{'id': 1, 'version': 0}])


def downgrade() -> None:
    op.drop_table('config_version')
