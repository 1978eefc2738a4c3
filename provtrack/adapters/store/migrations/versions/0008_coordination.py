"""Coordination: manual tasks in work group queues, and work groups defined through the API.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manual_task",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("activity_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("work_group", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("priority_rank", sa.Integer, nullable=False),
        sa.Column("jeopardy_rank", sa.Integer, nullable=False),
        sa.Column("due_date", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.UniqueConstraint("activity_id", "attempt", name="uq_manual_task_activity_attempt"),
    )
    op.create_index(
        "ix_manual_task_queue",
        "manual_task",
        ["work_group", "state", "priority_rank", "jeopardy_rank", "due_date"],
    )
    op.create_index("ix_manual_task_service_order_id", "manual_task", ["service_order_id"])
    op.create_table(
        "work_group",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("work_group")
    op.drop_table("manual_task")
