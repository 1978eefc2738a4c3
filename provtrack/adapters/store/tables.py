"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; a test checks they agree.

Each aggregate is stored as its TMF document (JSON text, without `href`) beside the columns that
queries sort and filter on most; the columns are written from the aggregate on every save.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, Table, Text, UniqueConstraint
from sqlalchemy.dialects import sqlite

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid; PostgreSQL wants a bigint identity.
AutoId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")

service_order = Table(
    "service_order",
    metadata,
    Column("id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("order_date", Text, nullable=False),
    Column("external_id", Text),
    Column("category", Text),
    Column("priority", Text),
    Column("requested_completion_date", Text),
    Column("state_before_cancellation", Text),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
    # Read by the dashboard and the business metrics (migration 0010, adapters/store/metrics.py).
    Column("jeopardy_level", Text, nullable=False, server_default="onTrack"),
    Column("jeopardized", Integer, nullable=False, server_default="0"),  # 1 once inJeopardy or late
    Column("completion_date", Text),
    Column("cycle_seconds", Float),  # completionDate - orderDate of a completed order
    Column("service_specification", Text),  # the items' specifications, sorted, joined by " + "
    Column("client_id", Text),  # the API client that placed it (domain/access.py)
    Index("ix_service_order_state_order_date", "state", "order_date", "id"),
    Index("ix_service_order_order_date", "order_date", "id"),
    Index("ix_service_order_external_id", "external_id"),
    Index("ix_service_order_client_id", "client_id", "order_date", "id"),
    Index(
        "ix_service_order_jeopardy_level_state",
        "jeopardy_level",
        "state",
        "requested_completion_date",
        "order_date",
    ),
    Index(
        "ix_service_order_completion",
        "completion_date",
        "service_specification",
        "cycle_seconds",
        "requested_completion_date",
        "jeopardized",
    ),
    Index("ix_service_order_category", "category", "priority", "state"),
    Index("ix_service_order_priority", "priority", "state"),
)

# Terminal orders `provtrack archive` moved out of service_order: read by id and by `asOf`, never
# listed (migration 0012_archive).
archived_service_order = Table(
    "archived_service_order",
    metadata,
    Column("id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("order_date", Text, nullable=False),
    Column("archived_at", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("client_id", Text),
    Index("ix_archived_service_order_order_date", "order_date"),
)

cancel_service_order = Table(
    "cancel_service_order",
    metadata,
    Column("id", Text, primary_key=True),
    Column("service_order_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("document", Text, nullable=False),
    Index("ix_cancel_service_order_service_order_id", "service_order_id"),
    Index("ix_cancel_service_order_created_at", "created_at", "id"),
)

audit_record = Table(
    "audit_record",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("service_order_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("attribute", Text, nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Index("ix_audit_record_service_order_id", "service_order_id", "id"),
)

# Due work: dispatching, polling, deliveries, timers. (kind, key) is unique: scheduling the same work
# again replaces its due time instead of adding a duplicate.
job = Table(
    "job",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("due_at", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    # Claims since it was last given back: more than one means a holder died with it (taken over).
    Column("claims", Integer, nullable=False, server_default="0"),
    Column("lease_owner", Text),
    Column("lease_expires_at", Text),
    Column("last_error", Text),
    Column("failed_at", Text),
    Column("created_at", Text, nullable=False),
    UniqueConstraint("kind", "key", name="uq_job_kind_key"),
    Index("ix_job_due_at", "due_at"),
)
