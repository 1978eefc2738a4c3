"""The in-memory store's records (adapters/memory_store.py): plans, cancellations, jeopardy,
subscriptions, tasks, access and idempotency records, the archive, each as the SQL store keeps its
rows, on the transaction's copy of the data."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from provtrack.domain import states
from provtrack.domain.access import ApiKey
from provtrack.domain.activities import OPEN, Activity, waiting_of
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.coordination_catalog import read_work_group
from provtrack.domain.escalation import Escalation
from provtrack.domain.events import EventFilter
from provtrack.domain.idempotency import Answer, ClaimLost, KeyRecord
from provtrack.domain.jeopardy import learned_from_sorted
from provtrack.domain.plan import Plan
from provtrack.domain.query import Query
from provtrack.domain.tasks import ManualTask, TaskState
from provtrack.domain.work_groups import WorkGroup
from provtrack.services.ports import (
    ConcurrentUpdate,
    DownstreamSubscription,
    FinishedActivity,
    OrderEntry,
    Page,
    TaskSelection,
)

if TYPE_CHECKING:
    from provtrack.adapters.memory_store import MemoryTransaction

HISTORY_WINDOW = 500  # as the SQL store: learned durations read the newest samples only


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class MemoryArchive:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx

    def _finished(self, states: Sequence[str], before: str) -> list[tuple[str, str]]:
        """(order date, id) of the orders in `states` whose last change is older than `before`."""
        last: dict[str, str] = {}
        for order_id, change in self.tx.data.audit:
            last[order_id] = max(last.get(order_id, ""), change.at)
        found = []
        for order_id, (document, _version, _before) in self.tx.data.orders.items():
            parsed = orjson.loads(document)
            if parsed["state"] in states and last.get(order_id, "") < before:
                found.append((parsed["orderDate"], order_id))
        return sorted(found)

    def count_finished(self, *, states: Sequence[str], before: str) -> int:
        return len(self._finished(states, before))

    def move_finished(self, *, states: Sequence[str], before: str, now: str, limit: int) -> int:
        self.tx._write()
        chosen = self._finished(states, before)[:limit]
        for _date, order_id in chosen:
            document, version, _ = self.tx.data.orders.pop(order_id)
            self.tx.data.archived[order_id] = (document, version, self.tx.data.clients.get(order_id))
        return len(chosen)

    def get_order_json(self, order_id: str) -> str | None:
        found = self.tx.data.archived.get(order_id)
        return None if found is None else found[0]

    def get_order_entry(self, order_id: str) -> OrderEntry | None:
        found = self.tx.data.archived.get(order_id)
        return None if found is None else OrderEntry(*found)


class MemoryPlans:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx
        self.data = tx.data

    def add(self, plan: Plan) -> None:
        self.tx._write()
        plan.version = 1
        self._put(plan)

    def get(self, order_id: str) -> Plan | None:
        row = self.data.plans.get(order_id)
        if row is None:
            return None
        document, version = row
        activities = [
            Activity.from_document(orjson.loads(d)) for o, d in self.data.activities.values() if o == order_id
        ]
        position = {a: i for i, a in enumerate(orjson.loads(document).get("activityOrder", []))}
        activities.sort(key=lambda a: position.get(a.id, len(position)))
        return Plan.from_document(orjson.loads(document), activities, version=version)

    def save(self, plan: Plan) -> None:
        self.tx._write()
        stored = self.data.plans.get(plan.order_id)
        if stored is None or stored[1] != plan.version:
            raise ConcurrentUpdate(f"the plan of service order {plan.order_id} changed while it was updated")
        plan.version += 1
        self._put(plan)

    def _put(self, plan: Plan) -> None:
        self.data.plans[plan.order_id] = (dumps(plan.to_document()), plan.version)
        for a in plan.activities:
            self.data.activities[a.id] = (plan.order_id, dumps(a.to_document()))
        self.tx.record_changes(plan.order_id, plan.changes)

    def get_json(self, order_id: str) -> dict[str, Any] | None:
        plan = self.get(order_id)
        if plan is None:
            return None
        return {**plan.to_document(), "activity": [a.to_document() for a in plan.activities]}

    def get_activity(self, activity_id: str) -> Activity | None:
        row = self.data.activities.get(activity_id)
        return None if row is None else Activity.from_document(orjson.loads(row[1]))

    def order_of_activity(self, activity_id: str) -> str | None:
        row = self.data.activities.get(activity_id)
        return None if row is None else row[0]

    def activity_by_external_id(self, owner: str, external_id: str) -> tuple[str, str] | None:
        for activity_id, (order_id, document) in self.data.activities.items():
            doc = orjson.loads(document)
            if doc.get("owner") == owner and doc.get("externalId") == external_id:
                return activity_id, order_id
        return None

    def waiting_at(self, owner: str, kind: ActivityKind) -> list[tuple[str, bool]]:
        documents = (orjson.loads(document) for _order_id, document in self.data.activities.values())
        open_states = {s.value for s in OPEN}
        return waiting_of((d for d in documents if d["owner"] == owner and d["state"] in open_states), kind)

    def park_notification(
        self, owner: str, external_id: str, state: str, reason: str | None, now: str
    ) -> None:
        self.tx._write()
        self.data.parked.append((owner, external_id, state, reason))

    def take_parked_notifications(self, owner: str, external_id: str) -> list[tuple[str, str | None]]:
        taken = [(s, r) for o, e, s, r in self.data.parked if (o, e) == (owner, external_id)]
        if taken:
            self.tx._write()
            self.data.parked = [p for p in self.data.parked if (p[0], p[1]) != (owner, external_id)]
        return taken


class MemoryCancellations:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx
        self.data = tx.data

    def task(self, task_id: str) -> CancelServiceOrder | None:
        row = self.data.tasks.get(task_id)
        return None if row is None else CancelServiceOrder.from_document(orjson.loads(row[0]))

    def open_task(self, order_id: str) -> CancelServiceOrder | None:
        found = [
            (created_at, task_id)
            for task_id, (document, created_at) in self.data.tasks.items()
            if (task := orjson.loads(document))["serviceOrder"]["id"] == order_id
            and task["state"] in (states.TaskState.ACKNOWLEDGED, states.TaskState.IN_PROGRESS)
        ]
        return self.task(max(found)[1]) if found else None

    def save_task(self, task: CancelServiceOrder) -> None:
        self.tx._write()
        created_at = self.data.tasks[task.id][1]
        self.data.tasks[task.id] = (dumps(task.to_document()), created_at)
        self.tx.record_changes(task.service_order_id, task.changes)
        self.data.outbox.extend((task.service_order_id, e) for e in task.events)
        task.events.clear()

    def link_product_order(
        self, product_order_id: str, service_order_id: str, task_id: str, *, at: str
    ) -> None:
        self.tx._write()
        key = (product_order_id, service_order_id)
        if key in self.data.product_order_links:
            raise ConcurrentUpdate(f"product order {product_order_id} opened a cancellation meanwhile")
        self.data.product_order_links[key] = task_id

    def product_order_link(self, product_order_id: str, service_order_id: str) -> str | None:
        return self.data.product_order_links.get((product_order_id, service_order_id))


class MemoryJeopardyRecords:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx
        self.data = tx.data

    def escalations(self, order_id: str) -> list[Escalation]:
        found = [e for (o, _rule), e in self.data.escalations.items() if o == order_id]
        return [dataclasses.replace(e) for e in sorted(found, key=lambda e: e.rule)]

    def add_escalation(self, item: Escalation) -> None:
        self.save_escalation(item)

    def save_escalation(self, item: Escalation) -> None:
        self.tx._write()
        self.data.escalations[(item.order_id, item.rule)] = dataclasses.replace(item)

    def delete_escalation(self, order_id: str, rule: str) -> None:
        self.tx._write()
        self.data.escalations.pop((order_id, rule), None)

    def record_durations(self, finished: Sequence[FinishedActivity]) -> None:
        for sample in finished:
            self.data.durations.setdefault(sample.activity_id, sample)  # a re-run keeps the first

    def learned_seconds(
        self, specification: str, name: str, *, percentile: float, min_samples: int
    ) -> float | None:
        samples = sorted(
            (d for d in self.data.durations.values() if (d.specification, d.name) == (specification, name)),
            key=lambda d: d.finished_at,
            reverse=True,
        )[:HISTORY_WINDOW]
        return learned_from_sorted(
            sorted(d.seconds for d in samples), percentile=percentile, min_samples=min_samples
        )

    def state_since(self, order_id: str) -> str | None:
        for o, change in reversed(self.data.audit):
            if o == order_id and change.subject == "serviceOrder" and change.attribute == "state":
                return change.at
        return None


class MemoryDownstreamSubscriptions:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx

    def get(self, system: str) -> DownstreamSubscription | None:
        return self.tx.data.subscriptions.get(system)

    def all(self) -> list[DownstreamSubscription]:
        return [self.tx.data.subscriptions[s] for s in sorted(self.tx.data.subscriptions)]

    def put(self, subscription: DownstreamSubscription) -> None:
        self.tx._write()
        self.tx.data.subscriptions[subscription.system] = subscription

    def forget(self, system: str) -> None:
        self.tx._write()
        self.tx.data.subscriptions.pop(system, None)


class MemoryTasks:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx
        self.data = tx.data

    def add(self, task: ManualTask) -> None:
        self.tx._write()
        task.version = 1
        self._put(task)

    def get(self, task_id: str) -> ManualTask | None:
        row = self.data.manual_tasks.get(task_id)
        return None if row is None else ManualTask.from_document(orjson.loads(row[0]), version=row[1])

    def save(self, task: ManualTask) -> None:
        self.tx._write()
        stored = self.data.manual_tasks.get(task.id)
        if stored is None or stored[1] != task.version:
            raise ConcurrentUpdate(f"manual task {task.id} changed while it was updated")
        task.version += 1
        self._put(task)

    def _put(self, task: ManualTask) -> None:
        self.data.manual_tasks[task.id] = (dumps(task.to_document()), task.version)
        self.tx.record_changes(task.order_id, task.changes)

    def _all(self) -> list[ManualTask]:
        return [
            ManualTask.from_document(orjson.loads(d), version=v) for d, v in self.data.manual_tasks.values()
        ]

    def of_order(self, order_id: str) -> list[ManualTask]:
        return sorted((t for t in self._all() if t.order_id == order_id), key=lambda t: (t.created, t.id))

    def select(self, selection: TaskSelection) -> tuple[int, list[ManualTask]]:
        found = [
            t
            for t in self._all()
            if selection.work_group in (None, t.work_group)
            and (not selection.states or t.state in selection.states)
            and selection.assignee in (None, t.assignee)
            and selection.order_id in (None, t.order_id)
        ]
        found.sort(key=lambda t: (*t.queue_key(), t.id))
        return len(found), found[selection.offset : selection.offset + selection.limit]

    def work_group(self, name: str) -> WorkGroup | None:
        definition = self.data.work_groups.get(name)
        return None if definition is None else read_work_group(name, definition)

    def work_groups(self) -> list[WorkGroup]:
        return [read_work_group(n, d) for n, d in sorted(self.data.work_groups.items())]

    def put_work_group(self, name: str, definition: dict[str, Any], *, at: str) -> None:
        self.tx._write()
        self.data.work_groups[name] = copy.deepcopy(definition)

    def in_progress(self, work_group: str, assignee: str | None = None) -> int:
        return sum(
            1
            for t in self._all()
            if t.work_group == work_group
            and t.state == TaskState.IN_PROGRESS
            and assignee in (None, t.assignee)
        )


class MemoryAccessRecords:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx

    def add_key(self, key: ApiKey) -> None:
        self.tx._write()
        if any(k.token_hash == key.token_hash for k in self.tx.data.keys.values()):
            raise ValueError("an API key with this token exists")
        self.tx.data.keys[key.id] = key

    def key_by_hash(self, token_hash: str) -> ApiKey | None:
        return next((k for k in self.tx.data.keys.values() if k.token_hash == token_hash), None)

    def api_keys(self) -> list[ApiKey]:
        return sorted(self.tx.data.keys.values(), key=lambda k: (k.client, k.created_at))

    def revoke_key(self, key_id: str, *, at: str) -> bool:
        self.tx._write()
        key = self.tx.data.keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return False
        self.tx.data.keys[key_id] = dataclasses.replace(key, revoked_at=at)
        return True

    def order_client(self, order_id: str) -> tuple[str | None] | None:
        if order_id not in self.tx.data.orders:
            return None
        return (self.tx.data.clients.get(order_id),)

    def task_order(self, task_id: str) -> str | None:
        row = self.tx.data.tasks.get(task_id)
        return None if row is None else str(orjson.loads(row[0])["serviceOrder"]["id"])

    def listener_token(self, source: str) -> str | None:
        return self.tx.data.listener_tokens.get(source)

    def put_listener_token(self, source: str, token: str, *, at: str) -> None:
        self.tx._write()
        self.tx.data.listener_tokens[source] = token


class MemoryIdempotencyRecords:
    def __init__(self, tx: MemoryTransaction) -> None:
        self.tx = tx

    def get(self, client: str, key: str) -> KeyRecord | None:
        return self.tx.data.idempotency.get((client, key))

    def claim(self, record: KeyRecord) -> None:
        self.tx._write()
        self.tx.data.idempotency[(record.client, record.key)] = record

    def complete(self, client: str, key: str, claim: str, answer: Answer) -> None:
        self.tx._write()
        held = self.tx.data.idempotency.get((client, key))
        if held is None or held.claim != claim or held.answer is not None:
            raise ClaimLost(f"Idempotency-Key {key!r} was taken over by a retry while this request ran")
        self.tx.data.idempotency[(client, key)] = dataclasses.replace(held, answer=answer, locked_until=None)

    def release(self, client: str, key: str, claim: str) -> None:
        self.tx._write()
        held = self.tx.data.idempotency.get((client, key))
        if held is not None and held.claim == claim and held.answer is None:
            del self.tx.data.idempotency[(client, key)]

    def prune(self, *, now: str, limit: int) -> int:
        self.tx._write()
        expired = [k for k, r in self.tx.data.idempotency.items() if r.expires_at <= now][:limit]
        for k in expired:
            del self.tx.data.idempotency[k]
        return len(expired)


def page_of(documents: list[str], query: Query, *, newest_first: str) -> Page:
    """Filter, sort and page documents as the SQL store does (ties by id)."""
    selector = EventFilter(query.conditions)
    parsed = [d for d in (orjson.loads(text) for text in documents) if selector.matches(d)]
    if query.sort:
        for key in reversed(query.sort):  # stable sorts: the first key decides last
            path = key.path
            parsed.sort(key=lambda d: (_first(d, path), d["id"]), reverse=key.descending)
    else:
        parsed.sort(key=lambda d: (str(d.get(newest_first) or ""), d["id"]), reverse=True)
    window = parsed[query.offset : query.offset + query.limit]
    return Page(len(parsed), [dumps(d) for d in window])


def _first(document: dict[str, Any], path: tuple[str, ...]) -> str:
    node: Any = document
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)
