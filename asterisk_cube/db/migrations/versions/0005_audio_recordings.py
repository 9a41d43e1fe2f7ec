"""audio: recording policies per line / campaign and the recordings made (issue #17)

recording_policies: per line or per campaign (exactly one), mode off | all | on_demand,
consent none | beep | announcement, retention in days. recordings: one row per Asterisk
recording of a call (its stored name, state, duration, when it expires).

Revision ID: 0005_audio_recordings
Revises: 0004_webrtc_agent_phone
Create Date: 2026-12-06 05:50:00
"""

import sqlalchemy as sa
from alembic import op

import asterisk_cube.db.models

revision = '0005_audio_recordings'
down_revision = '0004_webrtc_agent_phone'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'recording_policies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('line_id', sa.Integer(), nullable=True),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('consent', sa.String(length=16), nullable=False),
        sa.Column('announcement', sa.String(length=200), nullable=True),
        sa.Column('retention_days', sa.Integer(), nullable=False),
        sa.CheckConstraint(
            '(line_id IS NULL) <> (campaign_id IS NULL)',
            name=op.f('ck_recording_policies_one_scope'),
        ),
        sa.CheckConstraint(
            'retention_days >= 1', name=op.f('ck_recording_policies_retention_positive')
        ),
        sa.ForeignKeyConstraint(
            ['campaign_id'], ['campaigns.id'],
            name=op.f('fk_recording_policies_campaign_id_campaigns'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['line_id'], ['lines.id'],
            name=op.f('fk_recording_policies_line_id_lines'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_policies')),
        sa.UniqueConstraint('campaign_id', name=op.f('uq_recording_policies_campaign_id')),
        sa.UniqueConstraint('line_id', name=op.f('uq_recording_policies_line_id')),
    )
    op.create_table(
        'recordings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('format', sa.String(length=16), nullable=False),
        sa.Column('target', sa.String(length=160), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('started_by', sa.String(length=64), nullable=False),
        sa.Column('line_id', sa.Integer(), nullable=True),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('error', sa.String(length=200), nullable=True),
        sa.Column('started_at', asterisk_cube.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', asterisk_cube.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('duration_seconds', sa.Float(), nullable=True),
        sa.Column('expires_at', asterisk_cube.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('deleted_at', asterisk_cube.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recordings')),
        sa.UniqueConstraint('name', name=op.f('uq_recordings_name')),
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recordings_call_id'), ['call_id'], unique=False)
        batch_op.create_index('ix_recordings_expires', ['state', 'expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index('ix_recordings_expires')
        batch_op.drop_index(batch_op.f('ix_recordings_call_id'))
    op.drop_table('recordings')
    op.drop_table('recording_policies')
