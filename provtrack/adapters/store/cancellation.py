"""Cancel tasks as aggregates in SQL, and which product-order cancellation opened which task.

`SqlCancellations` is a transaction's `cancellations`: a task is read and saved in the transaction
of the order it cancels. Writes go through the transaction's `write`: at once, or queued for the end
of an optimistic transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from sqlalchemy import Column, Connection, PrimaryKeyConstraint, Table, Text, insert, select, update
from sqlalchemy.exc import IntegrityError

from provtrack.adapters.store import events as event_store
from provtrack.adapters.store.tables import cancel_service_order, metadata
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.states import TaskState
from provtrack.services.ports import ConcurrentUpdate

if TYPE_CHECKING:
    from provtrack.adapters.store.transaction import SqlTransaction

# One row per (product order, service order) whose cancellation opened a task: a product-order event
# delivered twice, or out of order, finds its row and opens nothing again.
product_order_cancellation = Table(
    "product_order_cancellation",
    metadata,
    Column("product_order_id", Text, nullable=False),
    Column("service_order_id", Text, nullable=False),
    Column("task_id", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    PrimaryKeyConstraint("product_order_id", "service_order_id", name="pk_product_order_cancellation"),
)

OPEN_TASK_STATES = (TaskState.ACKNOWLEDGED.value, TaskState.IN_PROGRESS.value)


class SqlCancellations:
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx
        self.conn = tx.conn

    def task(self, task_id: str) -> CancelServiceOrder | None:
        document = self.conn.execute(
            select(cancel_service_order.c.document).where(cancel_service_order.c.id == task_id)
        ).scalar()
        return None if document is None else CancelServiceOrder.from_document(orjson.loads(document))

    def open_task(self, order_id: str) -> CancelServiceOrder | None:
        document = self.conn.execute(
            select(cancel_service_order.c.document)
            .where(
                cancel_service_order.c.service_order_id == order_id,
                cancel_service_order.c.state.in_(OPEN_TASK_STATES),
            )
            .order_by(cancel_service_order.c.created_at.desc(), cancel_service_order.c.id.desc())
            .limit(1)
        ).scalar()
        return None if document is None else CancelServiceOrder.from_document(orjson.loads(document))

    def save_task(self, task: CancelServiceOrder) -> None:
        values = {"state": task.state.value, "document": orjson.dumps(task.to_document()).decode()}
        statement = update(cancel_service_order).where(cancel_service_order.c.id == task.id).values(values)
        tx = self.tx

        def save(conn: Connection) -> None:
            conn.execute(statement)
            if event_store.record_task_events(conn, task):
                tx.scheduled_jobs = True

        tx.record_changes(task.service_order_id, task.changes)
        tx.write(save)

    def link_product_order(
        self, product_order_id: str, service_order_id: str, task_id: str, *, at: str
    ) -> None:
        row = {
            "product_order_id": product_order_id,
            "service_order_id": service_order_id,
            "task_id": task_id,
            "received_at": at,
        }

        def link(conn: Connection) -> None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(product_order_cancellation).values(row))
            except IntegrityError:
                raise ConcurrentUpdate(
                    f"product order {product_order_id} opened a cancellation of {service_order_id} meanwhile"
                ) from None

        self.tx.write(link)

    def product_order_link(self, product_order_id: str, service_order_id: str) -> str | None:
        value = self.conn.execute(
            select(product_order_cancellation.c.task_id).where(
                product_order_cancellation.c.product_order_id == product_order_id,
                product_order_cancellation.c.service_order_id == service_order_id,
            )
        ).scalar()
        return None if value is None else str(value)
