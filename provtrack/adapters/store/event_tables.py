"""The tables of the events feature (migrations 0004 and 0006)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, PrimaryKeyConstraint, Table, Text

from provtrack.adapters.store.tables import AutoId, metadata

outbox_event = Table(
    "outbox_event",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False),
    Column("service_order_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_time", Text, nullable=False),
    Column("order_version", Integer),  # order events: the payload is this version of the order
    Column("document", Text),  # cancel task events: the task as it was
    Index("ix_outbox_event_service_order_id", "service_order_id", "id"),
)

event_subscription = Table(
    "event_subscription",
    metadata,
    Column("id", Text, primary_key=True),
    Column("callback", Text, nullable=False),
    Column("query", Text),
    Column("deliver_to", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_until", Text),
    Column("state", Text, nullable=False),  # active | disabled
    Column("disabled_reason", Text),
    Column("created_at", Text, nullable=False),
    Column("after_event", BigInteger, nullable=False),  # outbox id before the subscription existed
    Column("paused_until", Text),  # after a failed attempt: no stream of it posts before then
    Column("failures", Integer, nullable=False),
    Column("client_id", Text),  # whose orders it sees; NULL: an administrator's, every order
)

event_stream = Table(
    "event_stream",
    metadata,
    Column("subscription_id", Text, nullable=False),
    Column("service_order_id", Text, nullable=False),
    Column("delivered_through", BigInteger, nullable=False),  # outbox id of the last event handled
    Column("attempts", Integer, nullable=False),  # failed POSTs of the first event not yet handled
    Column("failing_since", Text),
    Column("last_error", Text),
    PrimaryKeyConstraint("subscription_id", "service_order_id", name="pk_event_stream"),
)

event_dead_letter = Table(
    "event_dead_letter",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("subscription_id", Text, nullable=False),
    Column("outbox_id", BigInteger, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("service_order_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("dead_at", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("replayed_at", Text),  # queued for replay (the subscription's redeliver job posts it)
    Column("delivered_at", Text),
    Index("ix_event_dead_letter_subscription_id", "subscription_id", "id"),
    Index("ix_event_dead_letter_outbox_id", "outbox_id"),  # pruning keeps what dead letters need
)

order_history = Table(
    "order_history",
    metadata,
    Column("service_order_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("valid_until", Text, nullable=False),  # the moment the next version replaced it
    Column("document", Text, nullable=False),
    PrimaryKeyConstraint("service_order_id", "version", name="pk_order_history"),
)
