"""Cancellation: which product-order cancellation (TMF622) opened which cancel task.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "product_order_cancellation",
        sa.Column("product_order_id", sa.Text, nullable=False),
        sa.Column("service_order_id", sa.Text, nullable=False),
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("product_order_id", "service_order_id", name="pk_product_order_cancellation"),
    )


def downgrade() -> None:
    op.drop_table("product_order_cancellation")
