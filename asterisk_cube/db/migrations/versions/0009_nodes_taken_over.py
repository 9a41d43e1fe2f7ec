"""nodes.taken_over_at: when a survivor took over this dead node's work (issue #14)

A node whose lease expired is dead; one survivor then releases its dialer claims and
logs its agents out, once, and stamps the time here. A node's next start clears it.

Revision ID: 0009_nodes_taken_over
Revises: 0008_trunk_node_sip_address
Create Date: 2026-12-06 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from asterisk_cube.db.models import UTCDateTime

revision = '0009_nodes_taken_over'
down_revision = '0008_trunk_node_sip_address'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.add_column(sa.Column('taken_over_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.drop_column('taken_over_at')
