"""agents.language may be empty: the desk then follows the browser (issue #16)

An agent's desk language is its own choice once it picked one in the desk's menu; until
then (NULL) the desk follows the browser's Accept-Language. Existing rows keep their
language (an agent's explicit choice cannot be told from the old default).

Revision ID: 0007_demo_agent_language
Revises: 0006_nodes_lease
Create Date: 2026-12-06 05:40:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0007_demo_agent_language'
down_revision = '0006_nodes_lease'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.alter_column('language', existing_type=sa.String(length=10), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE agents SET language = 'en' WHERE language IS NULL")
    with op.batch_alter_table('agents') as batch:
        batch.alter_column('language', existing_type=sa.String(length=10), nullable=False)
