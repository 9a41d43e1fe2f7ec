"""agent_status.device, device_since: the agent's phone as its node's Asterisk reports it
(issue #14)

The owner node writes its logged-in agents' device state (registered / in use / ringing /
unavailable) here while another node is live, so every node's panel shows it for agents
whose phone is on another node's Asterisk.

Revision ID: 0010_nodes2_agent_device
Revises: 0009_nodes_taken_over
Create Date: 2026-12-06 12:00:00
"""

import sqlalchemy as sa
from alembic import op

from asterisk_cube.db.models import UTCDateTime

revision = '0010_nodes2_agent_device'
down_revision = '0009_nodes_taken_over'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agent_status') as batch:
        batch.add_column(sa.Column('device', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('device_since', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agent_status') as batch:
        batch.drop_column('device_since')
        batch.drop_column('device')
