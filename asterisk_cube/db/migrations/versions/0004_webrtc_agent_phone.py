"""agents.phone: an agent's calls ring the desk phone or the phone in the browser

The desk lets an agent pick "phone in the browser" (a WebRTC PJSIP endpoint the desk
registers, issue #16); offers, outbound connects and callbacks then dial that endpoint
instead of ``agents.endpoint`` (core/phones.py). Existing agents keep their desk phone.

Revision ID: 0004_webrtc_agent_phone
Revises: 0003_config_version
Create Date: 2026-12-06 05:40:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0004_webrtc_agent_phone'
down_revision = '0003_config_version'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.add_column(
            sa.Column('phone', sa.String(length=10), nullable=False, server_default='desk')
        )


def downgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.drop_column('phone')
