"""Our hub subscription at each downstream system, so that a restart reuses it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "downstream_subscription",
        sa.Column("system", sa.Text, primary_key=True),
        sa.Column("hub_id", sa.Text, nullable=False),
        sa.Column("callback", sa.Text, nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("downstream_subscription")
