"""nodes.sip_address: where the other nodes' Asterisks reach this node's over SIP

Issue #14 (cross-node legs): `asterisk-cube dialplan install` records the node's
`[node] sip_address` here and generates one PJSIP trunk endpoint per other node from it
(core/trunk.py).

Revision ID: 0008_trunk_node_sip_address
Revises: 0007_demo_agent_language
Create Date: 2026-12-06 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008_trunk_node_sip_address'
down_revision = '0007_demo_agent_language'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.add_column(sa.Column('sip_address', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.drop_column('sip_address')
