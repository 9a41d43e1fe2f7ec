"""nodes.sip_address: where the other nodes' Asterisks reach this node's over SIP;
calls.offer_node: which node's claim offered a call

Issue #14 (cross-node legs): `asterisk-cube dialplan install` records the node's
`[node] sip_address` here and generates one PJSIP trunk endpoint per other node from it
(core/trunk.py). A node that claims another node's waiting call stamps itself in
calls.offer_node (acd/crossnode_claims.py), so a dead claimer's offers can be returned.

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
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('offer_node', sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('offer_node')
    with op.batch_alter_table('nodes') as batch:
        batch.drop_column('sip_address')
