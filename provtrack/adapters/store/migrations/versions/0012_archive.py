"""The archive: terminal orders `provtrack archive` moves out of service_order, still read by id and
by `asOf`, never listed.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archived_service_order",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("order_date", sa.Text, nullable=False),
        sa.Column("archived_at", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),  # its ETag, as it was when it moved
        sa.Column("client_id", sa.Text),  # the client that placed it: who may read it
    )
    op.create_index("ix_archived_service_order_order_date", "archived_service_order", ["order_date"])


def downgrade() -> None:
    op.drop_index("ix_archived_service_order_order_date", "archived_service_order")
    op.drop_table("archived_service_order")
