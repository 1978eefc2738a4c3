"""Our hub subscription at each downstream system, so that a restart reuses it; and how often a job
was claimed since it was given back, so that a job taken over from a dead holder is known as such.

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
    with op.batch_alter_table("job") as job:
        job.add_column(sa.Column("claims", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job") as job:
        job.drop_column("claims")
    op.drop_table("downstream_subscription")
