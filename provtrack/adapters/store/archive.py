"""The archive in SQL: finished orders moved out of service_order a batch at a time, read back by id.

An order is finished before a moment when it is in a terminal state and its last audit record is
older than that moment (the change that ended it is its last one). A batch selects, copies and
deletes in one transaction, so a crash moves a batch whole or not at all and a second run finds
only what is left.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, func, insert, literal, select

from provtrack.adapters.store.tables import archived_service_order, audit_record, service_order
from provtrack.services.ports import OrderEntry


def _finished_before(states: Sequence[str], before: str) -> ColumnElement[bool]:
    changed_since = exists().where(
        audit_record.c.service_order_id == service_order.c.id, audit_record.c.at >= before
    )
    return and_(service_order.c.state.in_(states), ~changed_since)


class SqlArchive:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def count_finished(self, *, states: Sequence[str], before: str) -> int:
        chosen = _finished_before(states, before)
        return int(
            self.conn.execute(select(func.count()).select_from(service_order).where(chosen)).scalar_one()
        )

    def move_finished(self, *, states: Sequence[str], before: str, now: str, limit: int) -> int:
        """Move up to `limit` orders finished before `before`, oldest first; how many moved."""
        chosen = (
            select(service_order.c.id)
            .where(_finished_before(states, before))
            .order_by(service_order.c.order_date, service_order.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)  # an order changing now waits a run
        ids = list(self.conn.execute(chosen).scalars())
        if not ids:
            return 0
        columns = (service_order.c.id, service_order.c.state, service_order.c.order_date)
        copied = select(
            *columns,
            literal(now),
            service_order.c.document,
            service_order.c.version,
            service_order.c.client_id,
        ).where(service_order.c.id.in_(ids))
        self.conn.execute(
            insert(archived_service_order).from_select(
                ["id", "state", "order_date", "archived_at", "document", "version", "client_id"], copied
            )
        )
        return int(self.conn.execute(delete(service_order).where(service_order.c.id.in_(ids))).rowcount)

    def get_order_entry(self, order_id: str) -> OrderEntry | None:
        row = self.conn.execute(
            select(
                archived_service_order.c.document,
                archived_service_order.c.version,
                archived_service_order.c.client_id,
            ).where(archived_service_order.c.id == order_id)
        ).first()
        return None if row is None else OrderEntry(*row)

    def get_order_json(self, order_id: str) -> str | None:
        document: str | None = self.conn.execute(
            select(archived_service_order.c.document).where(archived_service_order.c.id == order_id)
        ).scalar()
        return document
