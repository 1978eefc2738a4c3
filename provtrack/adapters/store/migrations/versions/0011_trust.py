"""Trust: API keys (hashes only), the client that owns each order and subscription, listener tokens,
and Idempotency-Key answers.

- `api_key`: static API keys, kept as SHA-256 hashes; revoked keys stay, for the record.
- `service_order.client_id`: the API client that placed the order (NULL before access control).
- `event_subscription.client_id`: the client a subscription belongs to and whose orders it sees
  (NULL: an administrator's, which sees every order).
- `listener_token`: the unguessable part of each listener callback URL, one per notifying source.
- `idempotency_key`: the first answer to a POST with an `Idempotency-Key`, per client, for a day.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text),
        sa.Column("revoked_at", sa.Text),
        sa.UniqueConstraint("token_hash", name="uq_api_key_token_hash"),
    )
    op.add_column("service_order", sa.Column("client_id", sa.Text))
    op.create_index("ix_service_order_client_id", "service_order", ["client_id", "order_date", "id"])
    op.add_column("event_subscription", sa.Column("client_id", sa.Text))
    op.create_table(
        "listener_token",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "idempotency_key",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("locked_until", sa.Text),
        sa.Column("status", sa.Integer),
        sa.Column("headers", sa.Text),
        sa.Column("body", sa.Text),
        sa.Column("claim", sa.Text),  # who runs it now: a completion by anyone else fails
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
    )
    op.create_index("ix_idempotency_key_expires_at", "idempotency_key", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_key_expires_at", "idempotency_key")
    op.drop_table("idempotency_key")
    op.drop_table("listener_token")
    with op.batch_alter_table("event_subscription") as batch:
        batch.drop_column("client_id")
    op.drop_index("ix_service_order_client_id", "service_order")
    with op.batch_alter_table("service_order") as batch:
        batch.drop_column("client_id")
    op.drop_table("api_key")
