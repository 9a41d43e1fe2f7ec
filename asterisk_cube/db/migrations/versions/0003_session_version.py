"""agents.session_version: web sessions revocable server-side

A signed session cookie records the agent's session_version at login; every request
(and every tick of an open event stream) compares it with the current one. Logging out,
a password change, deactivation and a role change bump it, which ends every session of
that agent at once (issue #12 item 7).

Revision ID: 0003_session_version
Revises: 0003_midnight
Create Date: 2026-12-06 02:40:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0003_session_version'
down_revision = '0003_midnight'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.add_column(
            sa.Column('session_version', sa.Integer(), nullable=False, server_default='0')
        )


def downgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.drop_column('session_version')
