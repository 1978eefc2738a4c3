"""Service orders, cancel tasks and the audit trail.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AutoId = sa.BigInteger().with_variant(sqlite.INTEGER(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "service_order",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("order_date", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("priority", sa.Text),
        sa.Column("requested_completion_date", sa.Text),
        sa.Column("state_before_cancellation", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_service_order_state_order_date", "service_order", ["state", "order_date", "id"])
    op.create_index("ix_service_order_order_date", "service_order", ["order_date", "id"])
    op.create_index("ix_service_order_external_id", "service_order", ["external_id"])

    op.create_table(
        "cancel_service_order",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_cancel_service_order_service_order_id", "cancel_service_order", ["service_order_id"])
    op.create_index("ix_cancel_service_order_created_at", "cancel_service_order", ["created_at", "id"])

    op.create_table(
        "audit_record",
        sa.Column("id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("attribute", sa.Text, nullable=False),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_record_service_order_id", "audit_record", ["service_order_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_record")
    op.drop_table("cancel_service_order")
    op.drop_table("service_order")
