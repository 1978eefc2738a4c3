"""The dashboard's reads in SQL (services/dashboard.py): each one query on an index made for it.

| read | index |
|---|---|
| the order list and its counts by state | `ix_service_order_state_order_date`, `ix_service_order_order_date` (and the filter's columns) |
| the jeopardy board | `ix_service_order_jeopardy_level_state` (level, state); then one query each for the shown orders' running activities and escalations |
| held orders | `ix_service_order_state_order_date` |
| activities in fallout | `ix_activity_state_owner` (state, owner) |
| the change mark | the outbox's primary key; `ix_outbox_event_service_order_id` for one order |
| the work queues' open tasks by state | `ix_manual_task_queue` (work group, state) |
| the trail mark | the audit trail's primary key; `ix_audit_record_service_order_id` for one order |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, and_, case, func, select

from provtrack.adapters.store.escalation import escalation
from provtrack.adapters.store.event_tables import event_dead_letter, event_stream, outbox_event
from provtrack.adapters.store.filters import FilterCompiler
from provtrack.adapters.store.order_rows import ORDER_COLUMNS
from provtrack.adapters.store.provisioning import activity
from provtrack.adapters.store.tables import audit_record, service_order
from provtrack.adapters.store.tasks import manual_task
from provtrack.domain.activities import Activity
from provtrack.domain.clock import parse_datetime
from provtrack.domain.escalation import Escalation
from provtrack.domain.query import Query
from provtrack.domain.states import TERMINAL_STATES, OrderState
from provtrack.services.dashboard import FalloutRow, SubscriptionHealth
from provtrack.services.ports import Page

if TYPE_CHECKING:
    from provtrack.adapters.store.transaction import SqlTransaction

# The dashboard filters on the jeopardy level now too; the TMF641 API keeps to the document.
DASHBOARD_COLUMNS = {**ORDER_COLUMNS, ("jeopardyLevel",): "jeopardy_level"}
OPEN_STATES = tuple(s.value for s in OrderState if s not in TERMINAL_STATES)


class SqlDashboard:
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx
        self.conn: Connection = tx.conn

    def _compiler(self) -> FilterCompiler:
        return FilterCompiler(service_order, DASHBOARD_COLUMNS, dialect=self.tx.dialect)

    def list_orders(self, query: Query) -> Page:
        return self.tx._page(self._compiler(), query, newest_first=service_order.c.order_date)

    def count_by_state(self, query: Query) -> dict[str, int]:
        stmt = select(service_order.c.state, func.count()).group_by(service_order.c.state)
        if query.conditions:
            stmt = stmt.where(self._compiler().where(query.conditions))
        return {str(state): int(n) for state, n in self.conn.execute(stmt)}

    def board(self, level: str, *, limit: int) -> tuple[int, list[str]]:
        where = and_(service_order.c.jeopardy_level == level, service_order.c.state.in_(OPEN_STATES))
        total = int(
            self.conn.execute(select(func.count()).select_from(service_order).where(where)).scalar_one()
        )
        # The nearest commitment first: the requested date when given (most are), else by age. The ids
        # are sorted from the index alone (it holds the sort keys), then only their documents read.
        ids = list(
            self.conn.execute(
                select(service_order.c.id)
                .where(where)
                .order_by(
                    service_order.c.requested_completion_date.is_(None),
                    service_order.c.requested_completion_date,
                    service_order.c.order_date,
                )
                .limit(limit)
            ).scalars()
        )
        rows = self.conn.execute(
            select(service_order.c.id, service_order.c.document).where(service_order.c.id.in_(ids))
        )
        documents = {str(order_id): str(document) for order_id, document in rows}
        return total, [documents[i] for i in ids]

    def running_activities(self, order_ids: Sequence[str]) -> dict[str, list[Activity]]:
        """The activities in progress or blocked of these orders (one query for a whole board)."""
        found: dict[str, list[Activity]] = {}
        if not order_ids:
            return found
        # By order id only (its index; a few activities each): with the state in the query, SQLite
        # would take the state index and read every running activity of every order.
        rows = self.conn.execute(
            select(activity.c.service_order_id, activity.c.document, activity.c.state).where(
                activity.c.service_order_id.in_(list(order_ids))
            )
        )
        for order_id, document, state in rows:
            if state not in ("inProgress", "blocked"):
                continue
            found.setdefault(str(order_id), []).append(Activity.from_document(orjson.loads(document)))
        return found

    def escalations(self, order_ids: Sequence[str]) -> dict[str, list[Escalation]]:
        found: dict[str, list[Escalation]] = {}
        if not order_ids:
            return found
        e = escalation.c
        rows = self.conn.execute(
            select(
                e.service_order_id, e.rule, e.matched_at, e.steps_fired, e.acknowledged_at, e.acknowledged_by
            )
            .where(e.service_order_id.in_(list(order_ids)))
            .order_by(e.service_order_id, e.rule)
        )
        for order_id, rule, matched_at, fired, acknowledged_at, acknowledged_by in rows:
            found.setdefault(str(order_id), []).append(
                Escalation(
                    str(order_id),
                    str(rule),
                    parse_datetime(matched_at),
                    int(fired),
                    acknowledged_at,
                    acknowledged_by,
                )
            )
        return found

    def fallout(self, *, limit: int) -> list[FalloutRow]:
        rows = self.conn.execute(
            select(
                activity.c.document,
                service_order.c.id,
                service_order.c.external_id,
                service_order.c.state,
            )
            .select_from(activity.join(service_order, service_order.c.id == activity.c.service_order_id))
            .where(activity.c.state == "fallout")
            .order_by(activity.c.owner, activity.c.id)
            .limit(limit)
        )
        return [
            FalloutRow(orjson.loads(document), str(order_id), external_id, str(state))
            for document, order_id, external_id, state in rows
        ]

    def held_orders(self, *, limit: int) -> tuple[int, list[str]]:
        where = service_order.c.state == OrderState.HELD.value
        total = int(
            self.conn.execute(select(func.count()).select_from(service_order).where(where)).scalar_one()
        )
        rows = self.conn.execute(
            select(service_order.c.document)
            .where(where)
            .order_by(service_order.c.order_date, service_order.c.id)
            .limit(limit)
        ).scalars()
        return total, list(rows)

    def subscription_health(self) -> list[SubscriptionHealth]:
        streams: dict[str, tuple[int, int, str | None]] = {}
        for sub, total, failing, error in self.conn.execute(
            select(
                event_stream.c.subscription_id,
                func.count(),
                func.sum(case((event_stream.c.failing_since.is_not(None), 1), else_=0)),
                func.max(event_stream.c.last_error),
            ).group_by(event_stream.c.subscription_id)
        ):
            streams[str(sub)] = (int(total), int(failing or 0), error)
        letters: dict[str, tuple[int, int, int]] = {}
        delivered = event_dead_letter.c.delivered_at.is_not(None)
        queued = and_(
            event_dead_letter.c.replayed_at.is_not(None), event_dead_letter.c.delivered_at.is_(None)
        )
        for sub, dead, replaying, redelivered in self.conn.execute(
            select(
                event_dead_letter.c.subscription_id,
                func.sum(case((and_(~delivered, event_dead_letter.c.replayed_at.is_(None)), 1), else_=0)),
                func.sum(case((queued, 1), else_=0)),
                func.sum(case((delivered, 1), else_=0)),
            ).group_by(event_dead_letter.c.subscription_id)
        ):
            letters[str(sub)] = (int(dead or 0), int(replaying or 0), int(redelivered or 0))
        health = []
        for sub in sorted(set(streams) | set(letters)):
            total, failing, error = streams.get(sub, (0, 0, None))
            dead, replaying, redelivered = letters.get(sub, (0, 0, 0))
            health.append(SubscriptionHealth(sub, total, failing, dead, replaying, redelivered, error))
        return health

    def change_mark(self, order_id: str | None) -> int:
        stmt: Any = select(func.max(outbox_event.c.id))
        if order_id is not None:
            stmt = stmt.where(outbox_event.c.service_order_id == order_id)
        return int(self.conn.execute(stmt).scalar() or 0)

    def task_counts(self, work_groups: Sequence[str], states: Sequence[str]) -> dict[tuple[str, str], int]:
        rows = self.conn.execute(
            select(manual_task.c.work_group, manual_task.c.state, func.count())
            .where(manual_task.c.work_group.in_(list(work_groups)), manual_task.c.state.in_(list(states)))
            .group_by(manual_task.c.work_group, manual_task.c.state)
        )
        return {(str(group), str(state)): int(count) for group, state, count in rows}

    def trail_mark(self, order_id: str | None) -> int:
        stmt: Any = select(func.max(audit_record.c.id))
        if order_id is not None:
            stmt = stmt.where(audit_record.c.service_order_id == order_id)
        return int(self.conn.execute(stmt).scalar() or 0)
