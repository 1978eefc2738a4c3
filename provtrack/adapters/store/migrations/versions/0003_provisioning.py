"""Provisioning plans, activities and parked downstream notifications.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AutoId = sa.BigInteger().with_variant(sqlite.INTEGER(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "provisioning_plan",
        sa.Column("service_order_id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("item_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_activity_service_order_id", "activity", ["service_order_id"])
    op.create_index("ix_activity_owner_external_id", "activity", ["owner", "external_id"])
    op.create_table(
        "parked_notification",
        sa.Column("id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("received_at", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_parked_notification_owner_external_id", "parked_notification", ["owner", "external_id"]
    )


def downgrade() -> None:
    op.drop_table("parked_notification")
    op.drop_table("activity")
    op.drop_table("provisioning_plan")
