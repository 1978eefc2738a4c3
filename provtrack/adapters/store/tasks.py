"""Manual tasks in SQL: one row per task (its document beside the columns the work queues sort and
filter on). `SqlTasks` is a transaction's `tasks`: tasks are written in the transaction of their order.
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
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from provtrack.adapters.store.tables import metadata
from provtrack.domain.coordination_catalog import read_work_group
from provtrack.domain.tasks import JEOPARDY_RANK, ManualTask, TaskState, priority_rank
from provtrack.domain.work_groups import WorkGroup
from provtrack.services.ports import ConcurrentUpdate, TaskSelection

if TYPE_CHECKING:
    from provtrack.adapters.store.transaction import SqlTransaction

manual_task = Table(
    "manual_task",
    metadata,
    Column("id", Text, primary_key=True),
    Column("service_order_id", Text, nullable=False),
    Column("activity_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("work_group", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("assignee", Text),
    Column("priority_rank", Integer, nullable=False),
    Column("jeopardy_rank", Integer, nullable=False),
    Column("due_date", Text),
    Column("created_at", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),
    UniqueConstraint("activity_id", "attempt", name="uq_manual_task_activity_attempt"),
    Index("ix_manual_task_queue", "work_group", "state", "priority_rank", "jeopardy_rank", "due_date"),
    Index("ix_manual_task_service_order_id", "service_order_id"),
)

# Work groups defined (or redefined) through the work API; they take precedence over the catalog's.
work_group = Table(
    "work_group",
    metadata,
    Column("name", Text, primary_key=True),
    Column("updated_at", Text, nullable=False),
    Column("document", Text, nullable=False),  # the definition as given (catalog-shaped)
)

_QUEUE_ORDER = (
    manual_task.c.priority_rank,
    manual_task.c.jeopardy_rank.desc(),
    manual_task.c.due_date.is_(None),
    manual_task.c.due_date,
    manual_task.c.created_at,
    manual_task.c.id,
)


def _columns(task: ManualTask) -> dict[str, Any]:
    return {
        "service_order_id": task.order_id,
        "activity_id": task.activity_id,
        "attempt": task.attempt,
        "work_group": task.work_group,
        "state": task.state.value,
        "assignee": task.assignee,
        "priority_rank": priority_rank(task.priority),
        "jeopardy_rank": JEOPARDY_RANK.get(task.jeopardy, 0),
        "due_date": task.due,
        "created_at": task.created,
        "version": task.version,
        "document": orjson.dumps(task.to_document()).decode(),
    }


class SqlTasks:
    """The manual tasks of one transaction. Writes go through the transaction's `write` (at once, or
    at the end of an optimistic transaction); tasks written here are read back from here."""

    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx
        self.conn = tx.conn
        self._written: dict[str, ManualTask] = {}
        self._added: set[str] = set()

    def add(self, task: ManualTask) -> None:
        task.version = 1
        row = {"id": task.id, **_columns(task)}
        self.tx.write(lambda conn: conn.execute(insert(manual_task).values(**row)))
        self._written[task.id] = task
        self._added.add(task.id)
        self.tx.record_changes(task.order_id, task.changes)

    def get(self, task_id: str) -> ManualTask | None:
        if task_id in self._written:
            return self._written[task_id]
        row = self.conn.execute(
            select(manual_task.c.document, manual_task.c.version).where(manual_task.c.id == task_id)
        ).first()
        return None if row is None else ManualTask.from_document(orjson.loads(row[0]), version=row[1])

    def save(self, task: ManualTask) -> None:
        expected = task.version
        task.version += 1
        row = _columns(task)

        def save(conn: Connection) -> None:
            result = conn.execute(
                update(manual_task)
                .where(manual_task.c.id == task.id, manual_task.c.version == expected)
                .values(**row)
            )
            if result.rowcount != 1:
                raise ConcurrentUpdate(f"manual task {task.id} changed while it was updated")

        if task.id in self._added:
            # Inserted in this transaction: nobody else can have changed it; the update must come
            # after the insert, which an optimistic transaction has not run yet.
            self.tx.write(
                lambda conn: conn.execute(
                    update(manual_task).where(manual_task.c.id == task.id).values(**row)
                )
            )
        else:
            self.tx.write(save, check=True)
        self._written[task.id] = task
        self.tx.record_changes(task.order_id, task.changes)

    def of_order(self, order_id: str) -> list[ManualTask]:
        rows = self.conn.execute(
            select(manual_task.c.id, manual_task.c.document, manual_task.c.version)
            .where(manual_task.c.service_order_id == order_id)
            .order_by(manual_task.c.created_at, manual_task.c.id)
        )
        found = {
            r.id: self._written.get(r.id)
            or ManualTask.from_document(orjson.loads(r.document), version=r.version)
            for r in rows
        }
        found.update({k: t for k, t in self._written.items() if t.order_id == order_id and k not in found})
        return list(found.values())

    def select(self, selection: TaskSelection) -> tuple[int, list[ManualTask]]:
        conditions = []
        if selection.work_group is not None:
            conditions.append(manual_task.c.work_group == selection.work_group)
        if selection.states:
            conditions.append(manual_task.c.state.in_(sorted(s.value for s in selection.states)))
        if selection.assignee is not None:
            conditions.append(manual_task.c.assignee == selection.assignee)
        if selection.order_id is not None:
            conditions.append(manual_task.c.service_order_id == selection.order_id)
        total = int(
            self.conn.execute(select(func.count()).select_from(manual_task).where(*conditions)).scalar_one()
        )
        rows = self.conn.execute(
            select(manual_task.c.document, manual_task.c.version)
            .where(*conditions)
            .order_by(*_QUEUE_ORDER)
            .offset(selection.offset)
            .limit(selection.limit)
        )
        return total, [ManualTask.from_document(orjson.loads(d), version=v) for d, v in rows]

    def work_group(self, name: str) -> WorkGroup | None:
        document = self.conn.execute(select(work_group.c.document).where(work_group.c.name == name)).scalar()
        return None if document is None else read_work_group(name, orjson.loads(document))

    def work_groups(self) -> list[WorkGroup]:
        rows = self.conn.execute(select(work_group.c.name, work_group.c.document).order_by(work_group.c.name))
        return [read_work_group(name, orjson.loads(document)) for name, document in rows]

    def put_work_group(self, name: str, definition: dict[str, Any], *, at: str) -> None:
        self.tx._not_optimistic("defining a work group")
        self.conn.execute(delete(work_group).where(work_group.c.name == name))
        row = {"name": name, "updated_at": at, "document": orjson.dumps(definition).decode()}
        self.conn.execute(insert(work_group).values(**row))

    def in_progress(self, work_group: str, assignee: str | None = None) -> int:
        self.tx._not_optimistic("counting tasks in progress")
        if self.tx.dialect == "postgresql":
            # Held to the end of the transaction: the next start in this group counts after it.
            self.conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"task-group:{work_group}"}
            )
        conditions = [
            manual_task.c.work_group == work_group,
            manual_task.c.state == TaskState.IN_PROGRESS.value,
        ]
        if assignee is not None:
            conditions.append(manual_task.c.assignee == assignee)
        return int(
            self.conn.execute(select(func.count()).select_from(manual_task).where(*conditions)).scalar_one()
        )
