"""Use-case tests that every store must pass alike: the in-memory store (tests/unit), SQLite and
PostgreSQL (tests/integration). A module runs them by importing them beside a `stores` fixture
that makes a store of its kind with the given after-change hooks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.adapters.policy_file import parse_policy_text
from provtrack.domain.catalog import ActivityKind
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.model import Change, ServiceOrder
from provtrack.domain.patching import NotPatchable
from provtrack.domain.plan import Plan
from provtrack.domain.query import parse_query
from provtrack.domain.states import OrderState, TaskState
from provtrack.domain.tasks import CapacityReached
from provtrack.services import (
    activities,
    cancellation,
    hub_subscriptions,
    orders,
    provisioning,
    revisions,
    tasks,
    withdrawals,
)
from provtrack.services.jeopardy import JeopardyMonitor
from provtrack.services.ports import (
    AfterChange,
    Context,
    DownstreamSubscription,
    OrderNotFound,
    Store,
    TaskSelection,
    Transaction,
)
from provtrack.services.unit_of_work import change_order

StoreFactory = Callable[[Sequence[AfterChange]], Store]
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

CATALOG = parse_catalog_text(
    """
systems:
  inventory:
    url: http://127.0.0.1:9/inventory/tmf-api/resourceOrderingManagement/v4
    progress: poll
    pollInterval: PT1H
services:
  fibre:
    add:
      - {id: reserve-port, system: inventory, resourceSpecification: olt-port, expectedDuration: PT1H,
         undo: release-port}
      - {id: activate-line, system: inventory, resourceSpecification: broadband-profile,
         after: [reserve-port], expectedDuration: PT2H}
    undo:
      - {id: release-port, system: inventory, resourceSpecification: olt-port, resourceAction: delete,
         expectedDuration: PT10M}
""",
    source="use-case-catalog.yaml",
)
POLICY = parse_policy_text(
    """
defaults:
  commitment:
    - within: P10D
  overrunThreshold: 0.25
  margin: PT0S
""",
    source="use-case-policy.yaml",
)


_ids = iter(range(10**9))


def ctx(at: datetime = T0, actor: str = "test") -> Context:
    return Context(now=format_datetime(at), actor=actor, new_id=lambda: f"id-{next(_ids):09d}")


def fibre(**fields: Any) -> dict[str, Any]:
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "fibre"}}}
    return {"externalId": "BSS-7", "serviceOrderItem": [item], **fields}


class Seen:
    """An after-change hook that remembers what it was shown."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, OrderState, bool, bool]] = []

    def __call__(self, tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None:
        self.calls.append((order.id, order.state, order.deleted, plan is not None))


def read(store: Store, order_id: str) -> ServiceOrder | None:
    with store.transaction(write=False) as tx:
        return tx.get_order(order_id)


def test_a_created_order_is_found_by_id_and_by_a_filter(stores: StoreFactory) -> None:
    store = stores(())
    order = orders.create_order(store, fibre(), ctx=ctx())
    orders.create_order(store, fibre(externalId="BSS-8"), ctx=ctx())

    assert f'"id":"{order.id}"' in orders.get_order_json(store, order.id)
    page = orders.list_orders(store, parse_query("externalId=BSS-7", default_limit=10, max_limit=10))
    assert page.total == 1
    assert order.id in page.documents[0]


def test_a_patch_runs_the_hooks_once_and_saves_the_change(stores: StoreFactory) -> None:
    seen = Seen()
    store = stores((seen,))
    order = orders.create_order(store, fibre(), ctx=ctx())

    orders.patch_order(store, order.id, {"description": "second floor"}, json_patch=False, ctx=ctx())

    saved = read(store, order.id)
    assert saved is not None
    assert saved.attributes["description"] == "second floor"
    assert saved.version == 2
    assert seen.calls == [(order.id, OrderState.ACKNOWLEDGED, False, False)]
    with store.transaction(write=False) as tx:
        assert [c.attribute for c in tx.audit_trail(order.id)][-1] == "description"


def test_a_refused_patch_changes_nothing_and_runs_no_hook(stores: StoreFactory) -> None:
    seen = Seen()
    store = stores((seen,))
    order = orders.create_order(store, fibre(), ctx=ctx())

    with pytest.raises(NotPatchable):
        orders.patch_order(
            store, order.id, {"orderDate": "2020-01-01T00:00:00Z"}, json_patch=False, ctx=ctx()
        )

    assert seen.calls == []
    saved = read(store, order.id)
    assert saved is not None
    assert saved.version == 1


def test_a_hook_that_fails_rolls_the_whole_change_back(stores: StoreFactory) -> None:
    def failing(tx: Transaction, order: ServiceOrder, plan: Plan | None, ctx: Context) -> None:
        raise RuntimeError("the hook failed")

    store = stores((failing,))
    order = orders.create_order(store, fibre(), ctx=ctx())

    with pytest.raises(RuntimeError):
        orders.patch_order(store, order.id, {"description": "lost"}, json_patch=False, ctx=ctx())

    saved = read(store, order.id)
    assert saved is not None
    assert "description" not in saved.attributes


def test_deleting_an_order_runs_the_hooks_and_removes_it(stores: StoreFactory) -> None:
    seen = Seen()
    store = stores((seen,))
    order = orders.create_order(store, fibre(), ctx=ctx())

    orders.delete_order(store, order.id, ctx=ctx())

    assert read(store, order.id) is None
    assert seen.calls == [(order.id, OrderState.ACKNOWLEDGED, True, False)]
    with pytest.raises(OrderNotFound):
        orders.delete_order(store, order.id, ctx=ctx())


def test_a_cancel_request_runs_the_hooks_and_keeps_its_task(stores: StoreFactory) -> None:
    seen = Seen()
    store = stores((seen,))
    order = orders.create_order(store, fibre(), ctx=ctx())

    task = cancellation.request_cancellation(
        store,
        {"serviceOrder": {"id": order.id}, "cancellationReason": "moved house"},
        ctx=ctx(),
        catalog=CATALOG,
    )

    saved = read(store, order.id)
    assert saved is not None
    assert saved.state == OrderState.CANCELLED
    assert seen.calls == [(order.id, OrderState.CANCELLED, False, False)]
    assert f'"id":"{task.id}"' in orders.get_task_json(store, task.id)


def test_an_order_is_planned_and_completes_with_its_resource_orders(stores: StoreFactory) -> None:
    seen = Seen()
    store = stores((seen,))
    order = orders.create_order(store, fibre(), ctx=ctx())

    planned = provisioning.plan_order(store, order.id, CATALOG, ctx=ctx())
    assert planned.outcome == "planned and started"
    for n, name in enumerate(("reserve-port", "activate-line")):
        activity = next(a for a in activities.get_plan(store, order.id)["activity"] if a["name"] == name)
        provisioning.record_resource_order(
            store,
            activity["id"],
            activity["attempt"],
            {"id": f"RO-{n}", "state": "completed"},
            CATALOG,
            ctx=ctx(),
        )

    saved = read(store, order.id)
    assert saved is not None
    assert saved.state == OrderState.COMPLETED
    assert seen.calls[0] == (order.id, OrderState.IN_PROGRESS, False, True)  # the new plan, shown
    assert seen.calls[-1] == (order.id, OrderState.COMPLETED, False, True)


def test_an_operator_retries_a_fallen_out_activity(stores: StoreFactory) -> None:
    store = stores(())
    order = orders.create_order(store, fibre(), ctx=ctx())
    provisioning.plan_order(store, order.id, CATALOG, ctx=ctx())
    [first] = [a for a in activities.get_plan(store, order.id)["activity"] if a["state"] == "inProgress"]

    provisioning.record_refusal(store, first["id"], first["attempt"], 422, {"message": "no port"}, ctx=ctx())
    held = read(store, order.id)
    assert held is not None
    assert held.state == OrderState.HELD

    retried = activities.retry_activity(store, first["id"], ctx=ctx(actor="operator"))

    assert retried["state"] == "inProgress"
    assert retried["attempt"] == first["attempt"] + 1
    resumed = read(store, order.id)
    assert resumed is not None
    assert resumed.state == OrderState.IN_PROGRESS


def test_jeopardy_as_a_hook_alerts_an_order_that_will_miss_its_date(stores: StoreFactory) -> None:
    monitor = JeopardyMonitor(lambda: POLICY)
    store = stores((monitor.after_change,))
    due = format_datetime(T0 + timedelta(hours=1))  # the plan needs three
    order = orders.create_order(store, fibre(requestedCompletionDate=due), ctx=ctx())

    provisioning.plan_order(store, order.id, CATALOG, ctx=ctx())

    saved = read(store, order.id)
    assert saved is not None
    assert saved.jeopardy_level == "inJeopardy"
    assert saved.expected_completion_date == format_datetime(T0 + timedelta(hours=3))


VISIT_CATALOG = parse_catalog_text(
    """
workGroups:
  techs: {members: [amelie], capacity: 1}
services:
  visit:
    add:
      - {id: install, kind: manualTask, workGroup: techs, expectedDuration: PT3H,
         checklist: [{name: ontSerial}]}
      - {id: install-2, kind: manualTask, workGroup: techs, expectedDuration: PT1H}
""",
    source="use-case-visit.yaml",
)


def test_manual_tasks_are_queued_worked_and_complete_their_order(stores: StoreFactory) -> None:
    queue = tasks.TaskQueue(VISIT_CATALOG)
    store = stores((queue.after_change,))
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "visit"}}}
    order = orders.create_order(store, {"serviceOrderItem": [item], "priority": "2"}, ctx=ctx())
    provisioning.plan_order(store, order.id, VISIT_CATALOG, ctx=ctx())

    total, queued = tasks.list_tasks(store, TaskSelection(work_group="techs"), now=T0)
    assert total == 2
    assert {t["state"] for t in queued} == {"queued"}
    assert {t["priority"] for t in queued} == {"2"}
    first, second = (t["id"] for t in queued)
    amelie = ctx(actor="amelie")
    for task_id in (first, second):
        tasks.claim_task(store, task_id, ctx=amelie, catalog=VISIT_CATALOG)
    tasks.start_task(store, first, ctx=amelie, catalog=VISIT_CATALOG)
    with pytest.raises(CapacityReached):
        tasks.start_task(store, second, ctx=amelie, catalog=VISIT_CATALOG)

    checklist = {"ontSerial": "SN-1"} if queued[0]["checklist"] else None
    tasks.complete_task(store, first, checklist, ctx=amelie, catalog=VISIT_CATALOG)
    tasks.start_task(store, second, ctx=amelie, catalog=VISIT_CATALOG)
    remaining = {"ontSerial": "SN-1"} if queued[1]["checklist"] else None
    tasks.complete_task(store, second, remaining, ctx=amelie, catalog=VISIT_CATALOG)

    saved = read(store, order.id)
    assert saved is not None
    assert saved.state == OrderState.COMPLETED
    assert {t["state"] for t in tasks.list_tasks(store, TaskSelection(order_id=order.id), now=T0)[1]} == {
        "completed"
    }


def test_an_escalations_assignment_moves_queued_tasks_to_another_group_or_person(
    stores: StoreFactory,
) -> None:
    catalog = parse_catalog_text(
        """
workGroups:
  techs: {members: [amelie, bruno]}
  leads: {members: [lea]}
services:
  visit:
    add:
      - {id: install, kind: manualTask, workGroup: techs, expectedDuration: PT3H}
      - {id: check, kind: manualTask, workGroup: techs, expectedDuration: PT1H}
""",
        source="use-case-escalation.yaml",
    )
    store = stores((tasks.TaskQueue(catalog).after_change,))
    item = {"id": "1", "action": "add", "service": {"serviceSpecification": {"id": "visit"}}}
    order = orders.create_order(store, {"serviceOrderItem": [item]}, ctx=ctx())
    provisioning.plan_order(store, order.id, catalog, ctx=ctx())
    first, second = (t["id"] for t in tasks.list_tasks(store, TaskSelection(order_id=order.id), now=T0)[1])
    tasks.claim_task(store, first, ctx=ctx(actor="amelie"), catalog=catalog)

    def escalate(assignment: dict[str, str]) -> None:
        def step(_tx: Transaction, changed: ServiceOrder, _plan: Plan | None) -> None:
            changed.changes.append(
                Change("escalation[slow]", "assignedTo", None, assignment, ctx().now, "policy")
            )

        change_order(store, order.id, step, ctx=ctx(actor="provtrack-jeopardy"))

    escalate({"person": "bruno"})  # both tasks to bruno: the claimed one is handed back first
    assert [
        (t["assignee"], t["state"]) for t in (tasks.get_task(store, i, now=T0) for i in (first, second))
    ] == [
        ("bruno", "assigned"),
        ("bruno", "assigned"),
    ]
    escalate({"person": "lea"})  # not a member of techs: nothing changes
    tasks.hand_back_task(store, second, "going home", ctx=ctx(actor="bruno"), catalog=catalog)
    escalate({"workGroup": "leads"})  # only the queued task moves
    assert [tasks.get_task(store, i, now=T0)["workGroup"] for i in (first, second)] == ["techs", "leads"]


# --- cancellation under way (docs/cancellation.md) ------------------------------------------------


def _plan_document(store: Store, order_id: str) -> dict[str, Any]:
    return activities.get_plan(store, order_id)


def _named(store: Store, order_id: str, name: str) -> dict[str, Any]:
    return next(a for a in _plan_document(store, order_id)["activity"] if a["name"] == name)


def _reserved_and_activating(store: Store) -> str:
    """An order whose port is reserved (done) and whose line activation is under way at its system."""
    order = orders.create_order(store, fibre(), ctx=ctx())
    provisioning.plan_order(store, order.id, CATALOG, ctx=ctx())
    for name, state in (("reserve-port", "completed"), ("activate-line", "inProgress")):
        activity = _named(store, order.id, name)
        provisioning.record_resource_order(
            store,
            activity["id"],
            activity["attempt"],
            {"id": f"RO-{name}", "state": state},
            CATALOG,
            ctx=ctx(),
        )
    return order.id


def test_a_cancellation_stops_what_is_under_way_then_undoes_what_is_done(stores: StoreFactory) -> None:
    store = stores((cancellation.CancellationBookkeeping(CATALOG).after_change,))
    order_id = _reserved_and_activating(store)

    task = cancellation.request_cancellation(
        store, {"serviceOrder": {"id": order_id}, "cancellationReason": "moved"}, ctx=ctx(), catalog=CATALOG
    )
    assert task.state == TaskState.IN_PROGRESS
    stop = _named(store, order_id, "cancel-activate-line")
    request = withdrawals.withdrawal_request(store, stop["id"])
    assert request is not None
    assert request.resource_order_id == "RO-activate-line"
    withdrawals.record_withdrawal_sent(
        store, request, "RO-activate-line", {"id": "CRO-1", "state": "done"}, CATALOG, ctx=ctx()
    )
    release = _named(store, order_id, "release-port")
    assert (release["state"], _named(store, order_id, "activate-line")["state"]) == (
        "inProgress",
        "cancelled",
    )
    provisioning.record_resource_order(
        store,
        release["id"],
        release["attempt"],
        {"id": "RO-release", "state": "completed"},
        CATALOG,
        ctx=ctx(),
    )

    saved = read(store, order_id)
    assert saved is not None
    assert saved.state == OrderState.CANCELLED
    assert saved.attributes["cancellationReason"] == "moved"
    done = cancellation.get_task(store, task.id)
    assert done.state == TaskState.DONE
    assert done.completion_message == (
        f"service order {order_id} cancelled; stopped: cancel-activate-line; undone: release-port"
    )


def test_a_refused_withdrawal_holds_the_order_until_an_operator_skips_it(stores: StoreFactory) -> None:
    store = stores((cancellation.CancellationBookkeeping(CATALOG).after_change,))
    order_id = _reserved_and_activating(store)
    task = cancellation.request_cancellation(
        store, {"serviceOrder": {"id": order_id}}, ctx=ctx(), catalog=CATALOG
    )
    stop = _named(store, order_id, "cancel-activate-line")
    request = withdrawals.withdrawal_request(store, stop["id"])
    assert request is not None

    withdrawals.record_withdrawal_refused(store, request, 409, {"message": "already active"}, ctx=ctx())

    held = read(store, order_id)
    assert held is not None
    assert held.state == OrderState.HELD
    told = cancellation.get_task(store, task.id)
    assert told.state == TaskState.IN_PROGRESS
    assert told.error_message is not None
    assert told.error_message["code"] == "CANCELLATION_HELD"
    assert "refused to cancel the resource order (HTTP 409): already active" in told.error_message["message"]

    activities.skip_activity(store, stop["id"], reason="cancelled by phone", ctx=ctx(actor="operator"))

    resumed = read(store, order_id)
    assert resumed is not None
    assert resumed.state == OrderState.PENDING_CANCELLATION
    assert cancellation.get_task(store, task.id).error_message is None
    assert _named(store, order_id, "release-port")["state"] == "inProgress"


def test_a_new_requested_completion_date_runs_the_jeopardy_projection_again(stores: StoreFactory) -> None:
    monitor = JeopardyMonitor(lambda: POLICY)
    store = stores((cancellation.CancellationBookkeeping(CATALOG).after_change, monitor.after_change))
    order = orders.create_order(
        store, fibre(requestedCompletionDate=format_datetime(T0 + timedelta(days=2))), ctx=ctx()
    )
    provisioning.plan_order(store, order.id, CATALOG, ctx=ctx())
    planned = read(store, order.id)
    assert planned is not None
    assert planned.jeopardy_level == "onTrack"

    due = format_datetime(T0 + timedelta(hours=1))  # the plan needs three
    revisions.patch_order(
        store, order.id, {"requestedCompletionDate": due}, json_patch=False, ctx=ctx(), catalog=CATALOG
    )

    revised = read(store, order.id)
    assert revised is not None
    assert revised.jeopardy_level == "inJeopardy"
    assert revised.jeopardy_alerts[-1]["message"]


def test_a_new_hub_subscription_reads_again_what_waits_at_its_system(stores: StoreFactory) -> None:
    store = stores((cancellation.CancellationBookkeeping(CATALOG).after_change,))
    order_id = _reserved_and_activating(store)
    cancellation.request_cancellation(
        store, {"serviceOrder": {"id": order_id}, "cancellationReason": "moved"}, ctx=ctx(), catalog=CATALOG
    )
    stop = _named(store, order_id, "cancel-activate-line")
    request = withdrawals.withdrawal_request(store, stop["id"])
    assert request is not None
    cancel_task = {"id": "CRO-1", "state": "acknowledged"}
    withdrawals.record_withdrawal_sent(store, request, "RO-activate-line", cancel_task, CATALOG, ctx=ctx())
    activating = _named(store, order_id, "activate-line")

    with store.transaction(write=False) as tx:
        waiting = sorted(tx.plans.waiting_at("inventory", ActivityKind.RESOURCE_ORDER))
        partner_orders = tx.plans.waiting_at("inventory", ActivityKind.PARTNER_ORDER)
    hub = DownstreamSubscription(
        "inventory", "hub-1", "http://provtrack.invalid/cb", "http://inventory.invalid"
    )
    read_again = hub_subscriptions.record_subscription(
        store,
        hub,
        owner="inventory",
        kind=ActivityKind.RESOURCE_ORDER,
        poll_job=provisioning.POLL_JOB,
        now=T0,
    )

    # The order being stopped and the withdrawal's cancel task; not the done reserve-port.
    assert waiting == sorted([(activating["id"], False), (stop["id"], True)])
    assert partner_orders == []
    assert read_again == 2
    assert hub_subscriptions.downstream_subscription(store, "inventory") == dataclasses.replace(
        hub, made_at=format_datetime(T0)
    )


HUB_CATALOG = parse_catalog_text(
    """
systems:
  activation:
    url: http://127.0.0.1:9/activation/tmf-api/resourceOrderingManagement/v4
    progress: hub
    pollInterval: PT5M
services:
  fibre:
    add:
      - {id: activate-line, system: activation, resourceSpecification: broadband-profile, expectedDuration: PT1H}
""",
    source="use-case-hub-catalog.yaml",
)


def _poll_due(store: Store, activity_id: str) -> datetime:
    """When the activity's poll job is due (the stores list their jobs each their own way)."""
    for job in store.pending_jobs(kind=provisioning.POLL_JOB):  # type: ignore[attr-defined]
        key, due = (job["key"], job["due_at"]) if isinstance(job, dict) else (job.key, job.due_at)
        if key == activity_id:
            return due if isinstance(due, datetime) else parse_datetime(due)
    raise AssertionError(f"no poll job for {activity_id}")


def test_an_answer_recorded_after_a_new_subscription_is_read_at_once(stores: StoreFactory) -> None:
    """A send under way when the subscription was made: the system may have notified (nobody)
    before the subscription's own read, which came before the answer recorded the order's id."""
    store = stores(())
    minute = timedelta(minutes=1)
    before = orders.create_order(store, fibre(), ctx=ctx())
    provisioning.plan_order(store, before.id, HUB_CATALOG, ctx=ctx(T0))
    hub = DownstreamSubscription("activation", "hub-1", "http://provtrack.invalid/cb", "http://sim.invalid")
    kind = ActivityKind.RESOURCE_ORDER
    poll = provisioning.POLL_JOB
    hub_subscriptions.record_subscription(
        store, hub, owner="activation", kind=kind, poll_job=poll, now=T0 + minute
    )
    after = orders.create_order(store, fibre(), ctx=ctx(T0 + 2 * minute))
    provisioning.plan_order(store, after.id, HUB_CATALOG, ctx=ctx(T0 + 2 * minute))

    answered = T0 + 3 * minute
    for n, order in enumerate((before, after)):
        activity = _named(store, order.id, "activate-line")
        answer = {"id": f"RO-{n}", "state": "inProgress"}
        provisioning.record_resource_order(
            store, activity["id"], activity["attempt"], answer, HUB_CATALOG, ctx=ctx(answered)
        )

    assert _poll_due(store, _named(store, before.id, "activate-line")["id"]) == answered  # read now
    assert _poll_due(store, _named(store, after.id, "activate-line")["id"]) == answered + 5 * minute
