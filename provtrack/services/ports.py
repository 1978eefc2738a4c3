"""What the use cases need from the world: who acts and when, the errors every feature shares, and
the store they change orders through. The SQL store and the in-memory store implement it.

A transaction reaches the records of each feature one way: a typed attribute (`tx.plans`,
`tx.jeopardy`, `tx.tasks`, `tx.cancellations`, `tx.subscriptions`, `tx.access`, `tx.idempotency`;
`tx.events` in services/events.py,
which alone uses it), never a probe of what the transaction happens to have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from provtrack.domain.access import ApiKey
from provtrack.domain.activities import Activity
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.escalation import Escalation
from provtrack.domain.idempotency import Answer, KeyRecord
from provtrack.domain.jobs import JobRequest
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.query import Query
from provtrack.domain.tasks import ManualTask, TaskState
from provtrack.domain.work_groups import WorkGroup

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Context:
    """Who acts, and when: entrypoints and the engine read the clock and pass it down."""

    now: str
    actor: str
    new_id: Callable[[], str]


class ConcurrentUpdate(Exception):
    """The order changed between load and save; the use case may retry."""


class OrderNotFound(LookupError):
    """No service order with that id."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"no service order with id {order_id!r}")


class TaskNotFound(LookupError):
    """No cancel task with that id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no cancelServiceOrder with id {task_id!r}")


class PlanNotFound(LookupError):
    """The order has no provisioning plan (yet, or it was rejected)."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"service order {order_id!r} has no provisioning plan (not planned yet, or rejected)"
        )


class ActivityNotFound(LookupError):
    """No provisioning activity with that id."""

    def __init__(self, activity_id: str) -> None:
        super().__init__(f"no provisioning activity with id {activity_id!r}")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the documents as stored JSON text, and how many match in all."""

    total: int
    documents: list[str]


@dataclass(frozen=True, slots=True)
class FinishedActivity:
    """How long one activity really took: a sample for learned durations."""

    activity_id: str
    specification: str
    name: str
    seconds: float
    finished_at: str


class PlanRecords(Protocol):
    """Provisioning plans and their activities, in the transaction of the order they belong to."""

    def add(self, plan: Plan) -> None: ...
    def get(self, order_id: str) -> Plan | None: ...
    def save(self, plan: Plan) -> None: ...
    def get_json(self, order_id: str) -> dict[str, Any] | None: ...
    def get_activity(self, activity_id: str) -> Activity | None: ...
    def order_of_activity(self, activity_id: str) -> str | None: ...
    def activity_by_external_id(self, owner: str, external_id: str) -> tuple[str, str] | None: ...
    def waiting_at(self, owner: str, kind: ActivityKind) -> list[tuple[str, bool]]:
        """The `kind` activities waiting on `owner` for an order it has taken (one with its id): each
        as (activity id, whether it is a withdrawal step, whose order is a cancel task)."""
        ...

    def park_notification(
        self, owner: str, external_id: str, state: str, reason: str | None, now: str
    ) -> None: ...
    def take_parked_notifications(self, owner: str, external_id: str) -> list[tuple[str, str | None]]: ...


class ManualTaskNotFound(LookupError):
    """No manual task with that id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no manual task with id {task_id!r}")


@dataclass(frozen=True, slots=True)
class TaskSelection:
    """Which manual tasks a list shows; a list is always in queue order (ManualTask.queue_key)."""

    work_group: str | None = None
    states: frozenset[TaskState] = frozenset()  # empty: every state
    assignee: str | None = None
    order_id: str | None = None
    offset: int = 0
    limit: int = 100


class TaskRecords(Protocol):
    """Manual tasks, changed in the transaction of the order they belong to; their audit entries go
    to the order's trail."""

    def add(self, task: ManualTask) -> None: ...
    def get(self, task_id: str) -> ManualTask | None: ...
    def save(self, task: ManualTask) -> None:
        """Saved with its version check (ConcurrentUpdate when it changed meanwhile)."""
        ...

    def of_order(self, order_id: str) -> list[ManualTask]: ...
    def select(self, selection: TaskSelection) -> tuple[int, list[ManualTask]]:
        """How many match in all, and the page, in queue order."""
        ...

    def in_progress(self, work_group: str, assignee: str | None = None) -> int:
        """Tasks of the group (of that member) in progress, counted under a lock on the group that
        the transaction keeps: two starts in one group take turns (not in optimistic transactions)."""
        ...

    def work_group(self, name: str) -> WorkGroup | None:
        """The group as defined through the API (it takes precedence over the catalog's), or None."""
        ...

    def work_groups(self) -> list[WorkGroup]: ...
    def put_work_group(self, name: str, definition: dict[str, Any], *, at: str) -> None: ...


class JeopardyRecords(Protocol):
    """Escalation ladders, learned durations and state history."""

    def escalations(self, order_id: str) -> list[Escalation]: ...
    def add_escalation(self, item: Escalation) -> None: ...
    def save_escalation(self, item: Escalation) -> None: ...
    def delete_escalation(self, order_id: str, rule: str) -> None: ...
    def record_durations(self, finished: Sequence[FinishedActivity]) -> None: ...
    def learned_seconds(
        self, specification: str, name: str, *, percentile: float, min_samples: int
    ) -> float | None:
        """That percentile of what the newest finished activities of this kind took, in seconds (the
        nearest rank, as `domain.jeopardy.learned_duration`); None while fewer than `min_samples`
        are known."""
        ...

    def state_since(self, order_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DownstreamSubscription:
    """Our subscription at a downstream system's hub: its id there, to check and reuse at start."""

    system: str
    hub_id: str
    callback: str  # where the system sends our notifications
    base_url: str  # the system's API when we subscribed (a catalog edit may move it)
    made_at: str | None = None  # when; None for one made before this was kept (migration 0013)


class DownstreamSubscriptions(Protocol):
    def get(self, system: str) -> DownstreamSubscription | None: ...
    def all(self) -> list[DownstreamSubscription]: ...
    def put(self, subscription: DownstreamSubscription) -> None: ...
    def forget(self, system: str) -> None: ...


class CancellationRecords(Protocol):
    """Cancel tasks as aggregates, and which product-order cancellation opened which task."""

    def task(self, task_id: str) -> CancelServiceOrder | None: ...
    def open_task(self, order_id: str) -> CancelServiceOrder | None:
        """The order's task that is not finished (acknowledged or inProgress), if any."""
        ...

    def save_task(self, task: CancelServiceOrder) -> None:
        """Save a changed task with its audit rows and events (in the transaction of its order)."""
        ...

    def link_product_order(
        self, product_order_id: str, service_order_id: str, task_id: str, *, at: str
    ) -> None:
        """Record that the product order's cancellation opened this task; ConcurrentUpdate if another
        transaction recorded the same pair meanwhile."""
        ...

    def product_order_link(self, product_order_id: str, service_order_id: str) -> str | None:
        """The task a product order's cancellation opened for this service order, if it did."""
        ...


class AccessRecords(Protocol):
    """API keys (their hashes), who owns what, and the tokens of listener callback URLs."""

    def add_key(self, key: ApiKey) -> None: ...
    def key_by_hash(self, token_hash: str) -> ApiKey | None: ...
    def api_keys(self) -> list[ApiKey]: ...
    def revoke_key(self, key_id: str, *, at: str) -> bool: ...
    def order_client(self, order_id: str) -> tuple[str | None] | None:
        """(the client that placed it,) or None when there is no such order."""
        ...

    def task_order(self, task_id: str) -> str | None: ...
    def listener_token(self, source: str) -> str | None: ...
    def put_listener_token(self, source: str, token: str, *, at: str) -> None: ...


class IdempotencyRecords(Protocol):
    """What was answered to each (client, Idempotency-Key) (domain/idempotency.py)."""

    def get(self, client: str, key: str) -> KeyRecord | None: ...
    def claim(self, record: KeyRecord) -> None:
        """Hold the key for `record.claim` (inserted, or replacing an expired or lapsed record)."""
        ...

    def complete(self, client: str, key: str, claim: str, answer: Answer) -> None:
        """Keep the answer, in the transaction that made what it answers; ClaimLost if the key is no
        longer held by `claim`."""
        ...

    def release(self, client: str, key: str, claim: str) -> None: ...
    def prune(self, *, now: str, limit: int) -> int: ...


@dataclass(frozen=True, slots=True)
class OrderEntry:
    """An order as the API reads it by id: stored JSON, version (its ETag) and owning client."""

    document: str
    version: int
    client: str | None


class ArchiveRecords(Protocol):
    """Finished orders moved out of the orders the store lists (services/archive.py)."""

    def count_finished(self, *, states: Sequence[str], before: str) -> int:
        """Orders in one of `states` whose last change is older than `before`."""
        ...

    def move_finished(self, *, states: Sequence[str], before: str, now: str, limit: int) -> int:
        """Move up to `limit` of them (oldest first) to the archive; how many moved."""
        ...

    def get_order_json(self, order_id: str) -> str | None:
        """An archived order's document (without `href`), or None."""
        ...

    def get_order_entry(self, order_id: str) -> OrderEntry | None:
        """An archived order as the API reads it by id (its last version, its client), or None."""
        ...


class Transaction(Protocol):
    """One transaction: orders, cancel tasks, audit rows and jobs, and the records of each feature."""

    @property
    def plans(self) -> PlanRecords: ...
    @property
    def jeopardy(self) -> JeopardyRecords: ...
    @property
    def subscriptions(self) -> DownstreamSubscriptions: ...
    @property
    def tasks(self) -> TaskRecords: ...
    @property
    def cancellations(self) -> CancellationRecords: ...
    @property
    def access(self) -> AccessRecords: ...
    @property
    def idempotency(self) -> IdempotencyRecords: ...
    @property
    def archive(self) -> ArchiveRecords: ...

    def get_order(self, order_id: str) -> ServiceOrder | None: ...
    def get_order_json(self, order_id: str) -> str | None: ...
    def get_order_entry(self, order_id: str) -> OrderEntry | None: ...
    def add_order(self, order: ServiceOrder) -> None: ...
    def save_order(self, order: ServiceOrder) -> None: ...
    def expect_unchanged(self, order: ServiceOrder) -> None:
        """The change was decided on this version of the order without saving it: fail with
        ConcurrentUpdate at commit if it changed meanwhile."""
        ...

    def delete_order(self, order_id: str, *, at: str | None = None) -> bool: ...
    def record_events(self, order: ServiceOrder) -> None: ...
    def list_orders(self, query: Query, *, client: str | None = None) -> Page: ...
    def add_task(self, task: CancelServiceOrder, *, created_at: str) -> None: ...
    def get_task_json(self, task_id: str) -> str | None: ...
    def list_tasks(self, query: Query, *, client: str | None = None) -> Page: ...
    def audit_trail(self, order_id: str) -> list[Change]: ...
    def record_changes(self, order_id: str, changes: list[Change]) -> None: ...
    def schedule_job(self, request: JobRequest, *, now: datetime, replace: bool = True) -> None: ...
    def cancel_job(self, kind: str, key: str) -> None: ...
    def run_job_now(self, kind: str, key: str, *, now: datetime) -> None:
        """Bring a pending job forward to `now` (a running one runs again when it ends); its attempts
        and backoff stay. Nothing when there is no such job."""
        ...

    def run_job_if_subscribed_since(
        self, subscription: str, since: str, kind: str, key: str, *, now: datetime
    ) -> None:
        """`run_job_now` if our hub subscription `subscription` was made after `since`, decided in
        commit order with the transaction that records the subscription (`subscriptions.put`): of
        two such transactions at once, the later sees what the earlier wrote."""
        ...

    def release_job(
        self,
        kind: str,
        key: str,
        *,
        owner: str,
        due_at: datetime | None = None,
        error: str = "",
        failed: datetime | None = None,
    ) -> None: ...


Guard = Callable[[ServiceOrder], None]  # the API's checks on the order it changes (owner, If-Match)
Then = Callable[["Transaction", T], None]  # runs in the transaction of the change (Idempotency-Key)


class AfterChange(Protocol):
    """A feature's hook, run by the unit of work after every change of an order, in its transaction
    (jeopardy re-projection today; cancellation bookkeeping and task queues plug in the same way)."""

    def __call__(self, tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None: ...


class Pending(Protocol):
    """Write transactions that returned before their COMMIT (`Store.commit_together`)."""

    async def durable(self) -> None:
        """Return once every one of them is committed; raise the COMMIT's error if one failed."""
        ...


class Store(Protocol):
    """Transactions, and the after-change hooks the assembly registered with the store."""

    @property
    def after_change(self) -> Sequence[AfterChange]: ...

    def answers_at_once(self, *, write: bool) -> bool:
        """A use case on one order would finish without waiting: no network, no other writer. The API
        runs such a one on its event loop instead of a thread (api/http.call_store)."""
        ...

    def transaction(
        self, *, write: bool, optimistic_on: str | None = None
    ) -> AbstractContextManager[Transaction]: ...

    def commit_together(self) -> AbstractContextManager[Pending]:
        """Write transactions of this block may return before their COMMIT, so that an event loop's
        concurrent requests share one (SQLite group commit): await `durable()` before answering."""
        ...
