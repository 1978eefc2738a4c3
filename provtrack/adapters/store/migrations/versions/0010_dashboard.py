"""The dashboard and its business metrics: the columns and indexes their aggregates read, the daily
roll-up, and the hourly count of open orders by state.

- service_order: `jeopardy_level` (the level now), `jeopardized` (1 once it was inJeopardy or late),
  `completion_date`, `cycle_seconds` (completionDate - orderDate of a completed order) and
  `service_specification` (the order's specifications, sorted, joined by " + ").
- activity: `name`, `finished_at` (when it was done, skipped, failed or cancelled), `fallouts` (how
  often it fell out).
- metric_order_day, metric_activity_day, metric_rollup: the daily roll-up (adapters/store/metrics.py).
- order_state_count: open orders by state, one row per state and hour (the `metrics.snapshot` job).

Existing rows are filled from their documents. An activity that fell out before this revision
counted nothing: it is counted once if it is in fallout now or was ever retried (attempt > 1).

Revision ID: 0010
Revises: 0009
Revises: 0009
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 2000
JEOPARDIZED = ("inJeopardy", "late")
FINISHED = ("done", "skipped", "failed", "cancelled")


def upgrade() -> None:
    with op.batch_alter_table("service_order") as orders:
        orders.add_column(sa.Column("jeopardy_level", sa.Text, nullable=False, server_default="onTrack"))
        orders.add_column(sa.Column("jeopardized", sa.Integer, nullable=False, server_default="0"))
        orders.add_column(sa.Column("completion_date", sa.Text))
        orders.add_column(sa.Column("cycle_seconds", sa.Float))
        orders.add_column(sa.Column("service_specification", sa.Text))
    with op.batch_alter_table("activity") as activities:
        activities.add_column(sa.Column("name", sa.Text))
        activities.add_column(sa.Column("finished_at", sa.Text))
        activities.add_column(sa.Column("fallouts", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "order_state_count",
        sa.Column("taken_at", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("orders", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("taken_at", "state", name="pk_order_state_count"),
    )
    op.create_table(
        "metric_order_day",
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("service_specification", sa.Text, nullable=False),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("orders", sa.Integer, nullable=False),
        sa.Column("with_requested", sa.Integer, nullable=False),
        sa.Column("on_time", sa.Integer, nullable=False),
        sa.Column("jeopardized", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("day", "service_specification", "bucket", name="pk_metric_order_day"),
    )
    op.create_table(
        "metric_activity_day",
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("activities", sa.Integer, nullable=False),
        sa.Column("fell_out", sa.Integer, nullable=False),
        sa.Column("fallouts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("day", "owner", "name", name="pk_metric_activity_day"),
    )
    op.create_table(
        "metric_rollup",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("through", sa.Text, nullable=False),
    )
    _fill_orders()
    _fill_activities()
    op.create_index(
        "ix_service_order_jeopardy_level_state",
        "service_order",
        ["jeopardy_level", "state", "requested_completion_date", "order_date"],
    )
    op.create_index(
        "ix_service_order_completion",
        "service_order",
        [
            "completion_date",
            "service_specification",
            "cycle_seconds",
            "requested_completion_date",
            "jeopardized",
        ],
    )
    op.create_index("ix_service_order_category", "service_order", ["category", "priority", "state"])
    op.create_index("ix_service_order_priority", "service_order", ["priority", "state"])
    op.create_index("ix_activity_finished", "activity", ["finished_at", "owner", "name", "fallouts"])
    op.create_index("ix_activity_state_owner", "activity", ["state", "owner"])


def downgrade() -> None:
    op.drop_index("ix_activity_state_owner", "activity")
    op.drop_index("ix_activity_finished", "activity")
    op.drop_index("ix_service_order_priority", "service_order")
    op.drop_index("ix_service_order_category", "service_order")
    op.drop_index("ix_service_order_completion", "service_order")
    op.drop_index("ix_service_order_jeopardy_level_state", "service_order")
    op.drop_table("order_state_count")
    op.drop_table("metric_rollup")
    op.drop_table("metric_activity_day")
    op.drop_table("metric_order_day")
    with op.batch_alter_table("activity") as activities:
        activities.drop_column("fallouts")
        activities.drop_column("finished_at")
        activities.drop_column("name")
    with op.batch_alter_table("service_order") as orders:
        for name in ("service_specification", "cycle_seconds", "completion_date", "jeopardized"):
            orders.drop_column(name)
        orders.drop_column("jeopardy_level")


def _fill_orders() -> None:
    conn = op.get_bind()
    orders = sa.table(
        "service_order",
        sa.column("id", sa.Text),
        sa.column("document", sa.Text),
        sa.column("jeopardy_level", sa.Text),
        sa.column("jeopardized", sa.Integer),
        sa.column("completion_date", sa.Text),
        sa.column("cycle_seconds", sa.Float),
        sa.column("service_specification", sa.Text),
    )
    update = (
        orders.update()
        .where(orders.c.id == sa.bindparam("b_id"))
        .values(
            jeopardy_level=sa.bindparam("jeopardy_level"),
            jeopardized=sa.bindparam("jeopardized"),
            completion_date=sa.bindparam("completion_date"),
            cycle_seconds=sa.bindparam("cycle_seconds"),
            service_specification=sa.bindparam("service_specification"),
        )
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(orders.c.id, orders.c.document)
            .where(orders.c.id > after)
            .order_by(orders.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(update, [{"b_id": r.id, **_order_columns(json.loads(r.document))} for r in rows])
        after = rows[-1].id


def _order_columns(doc: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    alerts = doc.get("jeopardyAlert") or []
    completed = doc.get("completionDate") if doc.get("state") == "completed" else None
    cycle = None
    if completed:
        start = datetime.fromisoformat(doc["orderDate"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(completed.replace("Z", "+00:00"))
        cycle = (end - start).total_seconds()
    specs: set[str] = set()
    stack = list(doc.get("serviceOrderItem") or [])
    while stack:
        item = stack.pop()
        spec = ((item.get("service") or {}).get("serviceSpecification") or {}).get("id")
        if spec:
            specs.add(str(spec))
        stack.extend(item.get("serviceOrderItem") or [])
    return {
        "jeopardy_level": str(alerts[-1].get("jeopardyType", "onTrack")) if alerts else "onTrack",
        "jeopardized": int(any(a.get("jeopardyType") in JEOPARDIZED for a in alerts)),
        "completion_date": completed,
        "cycle_seconds": cycle,
        "service_specification": " + ".join(sorted(specs)) or None,
    }


def _fill_activities() -> None:
    conn = op.get_bind()
    activities = sa.table(
        "activity",
        sa.column("id", sa.Text),
        sa.column("service_order_id", sa.Text),
        sa.column("document", sa.Text),
        sa.column("name", sa.Text),
        sa.column("finished_at", sa.Text),
        sa.column("fallouts", sa.Integer),
    )
    update = (
        activities.update()
        .where(activities.c.id == sa.bindparam("b_id"))
        .values(
            name=sa.bindparam("name"),
            finished_at=sa.bindparam("finished_at"),
            fallouts=sa.bindparam("fallouts"),
        )
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(activities.c.id, activities.c.document)
            .where(activities.c.id > after)
            .order_by(activities.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        values = []
        for row in rows:
            doc = json.loads(row.document)
            fell = doc.get("state") == "fallout" or int(doc.get("attempt", 0)) > 1
            finished = doc.get("actualEndDate") if doc.get("state") in FINISHED else None
            values.append(
                {"b_id": row.id, "name": doc.get("name"), "finished_at": finished, "fallouts": int(fell)}
            )
        conn.execute(update, values)
        after = rows[-1].id
