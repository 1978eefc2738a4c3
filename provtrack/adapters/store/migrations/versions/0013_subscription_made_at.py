"""When each hub subscription was made: a resource order or partner order whose send began before it
is read at once when its answer is recorded (what the system said meanwhile reached nobody).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("downstream_subscription", sa.Column("made_at", sa.Text))  # NULL: made before 0013


def downgrade() -> None:
    with op.batch_alter_table("downstream_subscription") as batch:
        batch.drop_column("made_at")
