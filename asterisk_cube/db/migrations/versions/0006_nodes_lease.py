"""nodes: one lease row per serve node; agent_status.node: which node an agent works on

Issue #14: several `serve` processes share one database. Each holds a lease on its
node name (core/nodes.py) and refuses to start while a live node holds it; the
agent's status row names the node that last wrote it, so a node's restart touches
only its own agents.

Revision ID: 0006_nodes_lease
Revises: 0005_audio_recordings
Create Date: 2026-12-06 06:20:00
"""

import sqlalchemy as sa
from alembic import op

from asterisk_cube.db.models import UTCDateTime

revision = '0006_nodes_lease'
down_revision = '0005_audio_recordings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'nodes',
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('heartbeat_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('lease_until', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_nodes')),
    )
    with op.batch_alter_table('agent_status') as batch:
        batch.add_column(sa.Column('node', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agent_status') as batch:
        batch.drop_column('node')
    op.drop_table('nodes')
