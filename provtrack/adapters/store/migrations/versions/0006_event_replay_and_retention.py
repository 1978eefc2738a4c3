"""Events: dead letters carry the eventId the receiver saw; replays run per subscription; pruning.

- `event_dead_letter.event_id`, filled from the outbox for the letters there are.
- `ix_event_dead_letter_outbox_id`: pruning keeps the outbox rows of undelivered dead letters.
- Replay jobs (`events.redeliver`) were one per dead letter, keyed by its id; they are one per
  subscription now, keyed by its id, posting its queued letters in order.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("event_dead_letter", sa.Column("event_id", sa.Text))
    op.execute(
        "UPDATE event_dead_letter SET event_id = "
        "(SELECT outbox_event.event_id FROM outbox_event WHERE outbox_event.id = event_dead_letter.outbox_id)"
    )
    op.execute("UPDATE event_dead_letter SET event_id = '' WHERE event_id IS NULL")  # none: never pruned
    with op.batch_alter_table("event_dead_letter") as batch:
        batch.alter_column("event_id", existing_type=sa.Text, nullable=False)
    op.create_index("ix_event_dead_letter_outbox_id", "event_dead_letter", ["outbox_id"])
    op.execute("DELETE FROM job WHERE kind = 'events.redeliver'")
    op.execute(
        "INSERT INTO job (kind, key, due_at, payload, attempts, created_at) "
        "SELECT 'events.redeliver', subscription_id, MIN(replayed_at), "
        "'{\"subscription\": \"' || subscription_id || '\"}', 0, MIN(replayed_at) "
        "FROM event_dead_letter WHERE replayed_at IS NOT NULL AND delivered_at IS NULL "
        "GROUP BY subscription_id"
    )


def downgrade() -> None:
    op.execute("DELETE FROM job WHERE kind = 'events.redeliver'")
    op.execute(
        "INSERT INTO job (kind, key, due_at, payload, attempts, created_at) "
        "SELECT 'events.redeliver', CAST(id AS TEXT), replayed_at, '{}', 0, replayed_at "
        "FROM event_dead_letter WHERE replayed_at IS NOT NULL AND delivered_at IS NULL"
    )
    op.drop_index("ix_event_dead_letter_outbox_id", "event_dead_letter")
    with op.batch_alter_table("event_dead_letter") as batch:
        batch.drop_column("event_id")
