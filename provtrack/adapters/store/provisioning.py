"""Provisioning plans in SQL: the plan row, one row per activity, and downstream notifications that
arrived before provtrack knew which activity they belong to.

`SqlPlans` is a transaction's `plans`: plans are written in the same transaction as their order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.tables import AutoId, metadata
from provtrack.domain.activities import ACTIVITY_TERMINAL, OPEN, Activity, waiting_of
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.plan import Plan
from provtrack.services.ports import ConcurrentUpdate

if TYPE_CHECKING:
    from provtrack.adapters.store.transaction import SqlTransaction

provisioning_plan = Table(
    "provisioning_plan",
    metadata,
    Column("service_order_id", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
)

activity = Table(
    "activity",
    metadata,
    Column("id", Text, primary_key=True),
    Column("service_order_id", Text, nullable=False),
    Column("item_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("external_id", Text),
    Column("document", Text, nullable=False),
    # Read by the dashboard and the fallout metrics (migration 0010, adapters/store/metrics.py).
    Column("name", Text),
    Column("finished_at", Text),  # when it was done, skipped, failed or cancelled
    Column("fallouts", Integer, nullable=False, server_default="0"),
    Index("ix_activity_service_order_id", "service_order_id"),
    Index("ix_activity_owner_external_id", "owner", "external_id"),
    Index("ix_activity_finished", "finished_at", "owner", "name", "fallouts"),
    Index("ix_activity_state_owner", "state", "owner"),
)

# A notification for a resource order provtrack cannot match yet (the POST that created it has not
# returned): kept here and applied when the activity learns its downstream id.
parked_notification = Table(
    "parked_notification",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("owner", Text, nullable=False),
    Column("external_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("reason", Text),
    Column("received_at", Text, nullable=False),
    Index("ix_parked_notification_owner_external_id", "owner", "external_id"),
)

# Compiled once and run on the driver (prepared.py): the engine reads and saves a plan per job.
_ACTIVITY_COLUMNS = (
    "service_order_id", "item_id", "state", "owner", "external_id", "document", "name", "fallouts",
    "finished_at",
)  # fmt: skip
_INSERT_PLAN = Prepared(
    insert(provisioning_plan).values(
        {name: bindparam(name) for name in ("service_order_id", "created_at", "version", "document")}
    )
)
_SAVE_PLAN = Prepared(
    update(provisioning_plan)
    .where(
        provisioning_plan.c.service_order_id == bindparam("b_order_id"),
        provisioning_plan.c.version == bindparam("b_expected"),
    )
    .values(version=bindparam("version"), document=bindparam("document"))
)
_INSERT_ACTIVITY = Prepared(
    insert(activity).values({name: bindparam(name) for name in ("id", *_ACTIVITY_COLUMNS)})
)
_SAVE_ACTIVITY = Prepared(
    update(activity)
    .where(activity.c.id == bindparam("b_id"))
    .values({name: bindparam(name) for name in _ACTIVITY_COLUMNS})
)
_GET_PLAN = Prepared(
    select(provisioning_plan.c.document, provisioning_plan.c.version).where(
        provisioning_plan.c.service_order_id == bindparam("order_id")
    )
)
_GET_ACTIVITIES = Prepared(
    select(activity.c.id, activity.c.document)
    .where(activity.c.service_order_id == bindparam("order_id"))
    .order_by(activity.c.id)
)
_GET_ACTIVITY = Prepared(select(activity.c.document).where(activity.c.id == bindparam("activity_id")))
_ORDER_OF_ACTIVITY = Prepared(
    select(activity.c.service_order_id).where(activity.c.id == bindparam("activity_id"))
)
_PARKED_WHERE = (
    parked_notification.c.owner == bindparam("owner"),
    parked_notification.c.external_id == bindparam("external_id"),
)
_PARKED = Prepared(
    select(parked_notification.c.id, parked_notification.c.state, parked_notification.c.reason)
    .where(*_PARKED_WHERE)
    .order_by(parked_notification.c.id)
)
_UNPARK = Prepared(delete(parked_notification).where(*_PARKED_WHERE))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class SqlPlans:
    """The plans of one transaction (`SqlTransaction.plans`). Writes go through the transaction's
    `write`: at once, or queued for the end of an optimistic transaction."""

    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx
        self.conn = tx.conn
        # The stored document of every activity read or written here: a save writes only those
        # that changed.
        self._loaded: dict[str, str] = {}

    def add(self, plan: Plan) -> None:
        plan.version = 1
        row = {
            "service_order_id": plan.order_id,
            "created_at": plan.created_at,
            "version": plan.version,
            "document": _dumps(plan.to_document()),
        }
        activities = [_activity_row(a) for a in plan.activities]

        def insert(conn: Connection) -> None:
            _INSERT_PLAN.execute(conn, row).close()
            _INSERT_ACTIVITY.executemany(conn, activities)

        self.tx.write(insert)
        loaded = self._loaded
        for a in plan.activities:
            loaded[a.id] = _dumps(a.to_document())
        self._record(plan)

    def get(self, order_id: str) -> Plan | None:
        row = _GET_PLAN.first(self.conn, {"order_id": order_id})
        if row is None:
            return None
        plan_document, version = row
        loaded = self._loaded
        activities = []
        for activity_id, activity_document in _GET_ACTIVITIES.all(self.conn, {"order_id": order_id}):
            loaded[activity_id] = activity_document
            activities.append(Activity.from_document(orjson.loads(activity_document)))
        # Keep the plan's own order of activities (catalog order), which the document records.
        document = orjson.loads(plan_document)
        position = {a: i for i, a in enumerate(document.get("activityOrder", []))}
        activities.sort(key=lambda a: position.get(a.id, len(position)))
        return Plan.from_document(document, activities, version=version)

    def save(self, plan: Plan) -> None:
        expected = plan.version
        plan.version += 1
        row = {
            "b_order_id": plan.order_id,
            "b_expected": expected,
            "version": plan.version,
            "document": _dumps(plan.to_document()),
        }
        loaded = self._loaded
        changed = []
        added = []  # activities a plan under way gains (a cancellation's steps, a revision's)
        for a in plan.activities:
            document = _dumps(a.to_document())
            if loaded.get(a.id) == document:
                continue
            if a.id not in loaded:
                added.append(_activity_row(a, document))
            else:
                activity_row = _activity_row(a, document)
                activity_row["b_id"] = activity_row.pop("id")
                changed.append(activity_row)
            loaded[a.id] = document

        def save(conn: Connection) -> None:
            if _SAVE_PLAN.rowcount(conn, row) != 1:
                raise ConcurrentUpdate(
                    f"the plan of service order {plan.order_id} changed while it was updated"
                )
            _SAVE_ACTIVITY.executemany(conn, changed)
            if added:
                _INSERT_ACTIVITY.executemany(conn, added)

        self.tx.write(save, check=True)
        self._record(plan)

    def _record(self, plan: Plan) -> None:
        self.tx.record_changes(plan.order_id, plan.changes)

    def get_activity(self, activity_id: str) -> Activity | None:
        """One activity, read alone (not for changing: plans are saved whole)."""
        document = _GET_ACTIVITY.scalar(self.conn, {"activity_id": activity_id})
        return None if document is None else Activity.from_document(orjson.loads(document))

    def order_of_activity(self, activity_id: str) -> str | None:
        value = _ORDER_OF_ACTIVITY.scalar(self.conn, {"activity_id": activity_id})
        return None if value is None else str(value)

    def activity_by_external_id(self, owner: str, external_id: str) -> tuple[str, str] | None:
        """(activity id, order id) of the activity that created this downstream order."""
        row = self.conn.execute(
            select(activity.c.id, activity.c.service_order_id).where(
                activity.c.owner == owner, activity.c.external_id == external_id
            )
        ).first()
        return None if row is None else (str(row.id), str(row.service_order_id))

    def waiting_at(self, owner: str, kind: ActivityKind) -> list[tuple[str, bool]]:
        rows = self.conn.execute(
            select(activity.c.document).where(
                activity.c.state.in_(sorted(s.value for s in OPEN)),
                activity.c.owner == owner,
                activity.c.external_id.is_not(None),
            )
        )
        return waiting_of((orjson.loads(row.document) for row in rows), kind)

    def park_notification(
        self, owner: str, external_id: str, state: str, reason: str | None, now: str
    ) -> None:
        row = {
            "owner": owner,
            "external_id": external_id,
            "state": state,
            "reason": reason,
            "received_at": now,
        }
        self.tx.write(lambda conn: conn.execute(insert(parked_notification).values(**row)))

    def take_parked_notifications(self, owner: str, external_id: str) -> list[tuple[str, str | None]]:
        """The parked (state, reason) notifications of a downstream order, oldest first; removed.

        In an optimistic transaction one parked after this read would be lost by the removal: the
        removal checks that the parked notifications are still those read, or the use case retries."""
        params = {"owner": owner, "external_id": external_id}
        rows = _PARKED.all(self.conn, params)
        read = [row[0] for row in rows]

        def unpark(conn: Connection) -> None:
            if [row[0] for row in _PARKED.all(conn, params)] != read:
                raise ConcurrentUpdate(f"a notification of {owner} {external_id} was parked meanwhile")
            if read:
                _UNPARK.execute(conn, params).close()

        if rows or self.tx.queued_writes is not None:
            self.tx.write(unpark)
        return [(str(state), reason) for _id, state, reason in rows]

    def get_json(self, order_id: str) -> dict[str, Any] | None:
        plan = self.get(order_id)
        if plan is None:
            return None
        return {**plan.to_document(), "activity": [a.to_document() for a in plan.activities]}


def _activity_row(a: Activity, document: str | None = None) -> dict[str, Any]:
    return {
        "id": a.id,
        "service_order_id": a.order_id,
        "item_id": a.item_id,
        "state": a.state.value,
        "owner": a.owner,
        "external_id": a.external_id,
        "document": document if document is not None else _dumps(a.to_document()),
        "name": a.name,
        "fallouts": a.fallouts,
        "finished_at": a.actual_end if a.state in ACTIVITY_TERMINAL else None,
    }
