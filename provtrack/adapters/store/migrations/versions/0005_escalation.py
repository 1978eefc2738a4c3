"""Jeopardy and escalation: ladder state per (order, rule), durations of finished activities.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalation",
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("matched_at", sa.Text, nullable=False),
        sa.Column("steps_fired", sa.Integer, nullable=False),
        sa.Column("acknowledged_at", sa.Text),
        sa.Column("acknowledged_by", sa.Text),
        sa.PrimaryKeyConstraint("service_order_id", "rule", name="pk_escalation"),
    )
    op.create_table(
        "activity_duration",
        sa.Column("activity_id", sa.Text, primary_key=True),
        sa.Column("service_specification", sa.Text, nullable=False),
        sa.Column("activity_name", sa.Text, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_activity_duration_spec_name",
        "activity_duration",
        ["service_specification", "activity_name", "finished_at"],
    )


def downgrade() -> None:
    op.drop_table("activity_duration")
    op.drop_table("escalation")
