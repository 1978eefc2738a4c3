"""Events: outbox, hub subscriptions, delivery streams, dead letters, order history.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

AutoId = sa.BigInteger().with_variant(sqlite.INTEGER(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_event",
        sa.Column("id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("event_time", sa.Text, nullable=False),
        sa.Column("order_version", sa.Integer),
        sa.Column("document", sa.Text),
    )
    op.create_index("ix_outbox_event_service_order_id", "outbox_event", ["service_order_id", "id"])
    op.create_table(
        "event_subscription",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("callback", sa.Text, nullable=False),
        sa.Column("query", sa.Text),
        sa.Column("deliver_to", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_secret_until", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("after_event", sa.BigInteger, nullable=False),
        sa.Column("paused_until", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    op.create_table(
        "event_stream",
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("delivered_through", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("failing_since", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("subscription_id", "service_order_id", name="pk_event_stream"),
    )
    op.create_table(
        "event_dead_letter",
        sa.Column("id", AutoId, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("outbox_id", sa.BigInteger, nullable=False),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("dead_at", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("replayed_at", sa.Text),
        sa.Column("delivered_at", sa.Text),
    )
    op.create_index("ix_event_dead_letter_subscription_id", "event_dead_letter", ["subscription_id", "id"])
    op.create_table(
        "order_history",
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("valid_until", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("service_order_id", "version", name="pk_order_history"),
    )


def downgrade() -> None:
    for table in ("order_history", "event_dead_letter", "event_stream", "event_subscription", "outbox_event"):
        op.drop_table(table)
