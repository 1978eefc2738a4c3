"""CancelServiceOrder: the request, the assessment against the point of no return, and what an
accepted cancellation does to the order and its plan (steps added, settled, finished)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from provtrack.adapters.catalog_file import parse_catalog_text
from provtrack.domain import plan as planning
from provtrack.domain.activities import Activity, ActivityState
from provtrack.domain.cancellation import (
    SERVER_OWNED_TASK_FIELDS,
    CancelServiceOrder,
    TaskError,
    validate_cancel_request,
)
from provtrack.domain.cancellation_impact import Refusal, Stop, assess_cancellation
from provtrack.domain.cancellation_steps import (
    CancellationInProgress,
    Steps,
    check_state,
    decide,
    finish,
    settle,
)
from provtrack.domain.model import EventType, ServiceOrder
from provtrack.domain.plan import Plan
from provtrack.domain.states import TERMINAL_STATES, OrderState, TaskState
from provtrack.domain.validation import InvalidOrder, ServerOwnedField
from tests.factories import item
from tests.unit.builders import ACTOR, accepted_order, at, order_in, state_changes

S = OrderState
A = ActivityState
BEING_CANCELLED = [S.ASSESSING_CANCELLATION, S.PENDING_CANCELLATION]
CATALOG = parse_catalog_text(
    """
systems:
  inv: {url: http://inv.example.net/tmf652, progress: poll, pollInterval: PT10S}
  act: {url: http://act.example.net/tmf652, progress: hub}
  legacy: {url: http://legacy.example.net/tmf652, progress: poll, pollInterval: PT1M, cancellable: false}
workGroups: {techs: {}}
partners:
  carrier: {url: http://carrier.example.net/tmf641, progress: poll, pollInterval: PT15M}
services:
  line:
    add:
      - {id: reserve, system: inv, resourceSpecification: port, expectedDuration: PT10M, undo: release}
      - {id: configure, system: inv, resourceSpecification: vlan, after: [reserve], expectedDuration: PT5M,
         undo: unconfigure}
      - {id: activate, system: act, resourceSpecification: profile, after: [configure],
         expectedDuration: PT5M}
    undo:
      - {id: release, system: inv, resourceSpecification: port, resourceAction: delete, expectedDuration: PT2M}
      - {id: unconfigure, system: inv, resourceSpecification: vlan, resourceAction: delete,
         expectedDuration: PT2M}
  fibre:
    add:
      - {id: reserve, system: inv, resourceSpecification: port, expectedDuration: PT10M, undo: release}
      - {id: install, kind: manualTask, workGroup: techs, after: [reserve], expectedDuration: PT3H,
         pointOfNoReturn: true}
      - {id: activate, system: act, resourceSpecification: profile, after: [install], expectedDuration: PT5M}
    undo:
      - {id: release, system: inv, resourceSpecification: port, resourceAction: delete, expectedDuration: PT2M}
  offnet:
    add:
      - {id: access, kind: partnerOrder, partner: carrier, serviceSpecification: eth-access,
         expectedDuration: P10D}
      - {id: activate, system: act, resourceSpecification: profile, after: [access], expectedDuration: PT5M}
  copper:
    add:
      - {id: jumper, system: legacy, resourceSpecification: jumper, expectedDuration: PT1H,
         pointOfNoReturn: true}
  plain:
    add:
      - {id: provision, system: act, resourceSpecification: sub, expectedDuration: PT1M, pointOfNoReturn: true}
      - {id: enable, system: act, resourceSpecification: services, after: [provision], expectedDuration: PT1M}
""",
    source="cancellation-test.yaml",
)


def cancel_body(order_id: str = "so-1", **fields: Any) -> dict[str, Any]:
    return {"serviceOrder": {"id": order_id}, "cancellationReason": "customer moved house", **fields}


def new_task(body: dict[str, Any] | None = None, *, now: str = at(20)) -> CancelServiceOrder:
    checked = validate_cancel_request(cancel_body() if body is None else body)
    return CancelServiceOrder.accept(checked, task_id="cso-1", now=now, actor=ACTOR)


_ids = (f"s{n}" for n in itertools.count(1))


def cancel(
    order: ServiceOrder,
    plan: Plan | None = None,
    task: CancelServiceOrder | None = None,
    *,
    now: str = at(21),
) -> tuple[CancelServiceOrder, Steps | None]:
    """What the use case does: the task goes inProgress, the assessment decides."""
    task = task or new_task()
    task.finish(TaskState.IN_PROGRESS, now=now, actor=ACTOR)
    impact = assess_cancellation(order, plan, CATALOG)
    steps = decide(
        order, plan, task, impact, catalog=CATALOG, now=now, actor=ACTOR, new_id=lambda: next(_ids)
    )
    return task, steps


def planned(spec: str, *, items: int = 1) -> tuple[ServiceOrder, Plan]:
    """An order of `items` items of `spec`, planned and started (its first activities in progress)."""
    order = accepted_order(*(item(str(n), spec=spec) for n in range(1, items + 1)))
    ids = (f"a{n}" for n in itertools.count(1))
    plan = planning.build_plan(order, CATALOG, now=at(1), new_id=lambda: next(ids))
    planning.start(plan, order, now=at(1), actor=ACTOR)
    return order, plan


def activity(plan: Plan, name: str, item_id: str = "1") -> Activity:
    return next(a for a in plan.activities if a.name == name and a.item_id == item_id and not _step(a))


def step_for(plan: Plan, target: Activity) -> Activity:
    return next(a for a in plan.activities if target.id in (a.withdraws, a.undoes))


def _step(a: Activity) -> bool:
    return a.withdraws is not None or a.undoes is not None


def sent(plan: Plan, order: ServiceOrder, name: str, item_id: str = "1") -> Activity:
    """The activity's resource order reached its system (it knows the downstream id)."""
    target = activity(plan, name, item_id)
    target.external_id = f"RO-{target.id}"
    planning.record_downstream_state(plan, order, target, "inProgress", reason=None, now=at(2), actor=ACTOR)
    return target


def complete(plan: Plan, order: ServiceOrder, name: str, item_id: str = "1", *, minute: int = 3) -> Activity:
    target = activity(plan, name, item_id)
    if target.external_id is None and target.kind.value == "resourceOrder":
        target.external_id = f"RO-{target.id}"
    if target.kind.value == "resourceOrder":
        planning.record_downstream_state(
            plan, order, target, "completed", reason=None, now=at(minute), actor=ACTOR
        )
    else:
        planning.finish_move(plan, order, target, A.DONE, now=at(minute), actor=ACTOR)
    return target


def downstream(plan: Plan, order: ServiceOrder, target: Activity, state: str, *, minute: int = 30) -> Steps:
    """The system reports `state` for the activity's order; then the cancellation settles."""
    planning.record_downstream_state(plan, order, target, state, reason=None, now=at(minute), actor=ACTOR)
    return settle(plan, order, catalog=CATALOG, now=at(minute), actor=ACTOR, new_id=lambda: next(_ids))


# --- the request -------------------------------------------------------------------------------


def test_a_cancellation_request_is_acknowledged_and_announced() -> None:
    task = new_task()
    assert task.state == TaskState.ACKNOWLEDGED
    assert task.service_order_id == "so-1"
    assert task.to_document()["@type"] == "CancelServiceOrder"
    assert [(c.old, c.new, c.at) for c in task.changes] == [(None, "acknowledged", at(20))]
    assert [e.event_type for e in task.events] == [EventType.CANCEL_CREATE]


def test_accepted_is_read_as_acknowledged() -> None:
    assert TaskState("accepted") is TaskState.ACKNOWLEDGED
    with pytest.raises(ValueError, match="'acceptedd'"):
        TaskState("acceptedd")


@pytest.mark.parametrize("name", sorted(SERVER_OWNED_TASK_FIELDS))
def test_a_server_owned_task_field_is_refused_by_name(name: str) -> None:
    with pytest.raises(ServerOwnedField) as refused:
        validate_cancel_request(cancel_body(**{name: "x"}))
    assert refused.value.path == name


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], "cancelServiceOrder"),
        ({"cancellationReason": "x"}, "serviceOrder"),
        ({"serviceOrder": "so-1"}, "serviceOrder.id"),
        ({"serviceOrder": {"href": "http://h/serviceOrder/so-1"}}, "serviceOrder.id"),
        ({"serviceOrder": {"id": "so-1"}, "requestedCancellationDate": "soon"}, "requestedCancellationDate"),
    ],
)
def test_a_malformed_request_names_the_offending_path(body: Any, path: str) -> None:
    with pytest.raises(InvalidOrder) as refused:
        validate_cancel_request(body)
    assert refused.value.path == path


def test_the_requested_cancellation_date_is_normalised() -> None:
    checked = validate_cancel_request(cancel_body(requestedCancellationDate="2026-12-01T12:00:00+01:00"))
    assert checked["requestedCancellationDate"] == "2026-12-01T11:00:00.000Z"


def test_a_task_survives_a_round_trip_through_its_document() -> None:
    task, _ = cancel(accepted_order())
    document = task.to_document()
    assert CancelServiceOrder.from_document(copy.deepcopy(document)).to_document() == document


# --- an order with nothing under way -----------------------------------------------------------


def test_an_order_not_planned_yet_is_cancelled_at_once_through_the_cancellation_states() -> None:
    order = accepted_order(item("1"), item("2", serviceOrderItem=[item("2.1")]))
    _task, steps = cancel(order)
    assert steps is not None
    assert steps.complete
    assert state_changes(order)[1:] == [
        ("acknowledged", "assessingCancellation"),
        ("assessingCancellation", "pendingCancellation"),
        ("pendingCancellation", "cancelled"),
    ]
    assert {i.state for i in order.all_items()} == {S.CANCELLED}
    document = order.to_document()
    assert (document["cancellationDate"], document["cancellationReason"]) == (at(21), "customer moved house")


def test_the_task_of_a_cancelled_order_is_done_and_says_so() -> None:
    task, _ = cancel(accepted_order())
    assert task.state == TaskState.DONE
    document = task.to_document()
    assert document["effectiveCancellationDate"] == at(21)
    assert document["completionMessage"] == "service order so-1 cancelled"
    assert "errorMessage" not in document
    assert [(c.old, c.new) for c in task.changes][-2:] == [
        ("acknowledged", "inProgress"),
        ("inProgress", "done"),
    ]
    assert [e.event_type for e in task.events] == [EventType.CANCEL_CREATE] + [
        EventType.CANCEL_STATE_CHANGE
    ] * 2


def test_a_request_without_a_reason_leaves_the_reason_unset() -> None:
    order = accepted_order()
    body = cancel_body()
    del body["cancellationReason"]
    cancel(order, task=new_task(body))
    assert order.state == S.CANCELLED
    assert "cancellationReason" not in order.to_document()


@pytest.mark.parametrize("state", BEING_CANCELLED)
def test_an_order_already_being_cancelled_is_not_cancelled_twice(state: OrderState) -> None:
    order = order_in(state)
    before = order.to_document()
    task, steps = cancel(order)
    assert steps is None
    assert order.to_document() == before
    assert task.state == TaskState.TERMINATED_WITH_ERROR
    assert task.error_message is not None
    assert task.error_message["code"] == "CANCELLATION_UNDER_WAY"
    assert f"already being cancelled ({state})" in task.error_message["message"]


def test_a_task_still_waiting_for_its_date_makes_a_second_request_under_way() -> None:
    order = accepted_order()
    waiting = new_task(cancel_body(requestedCancellationDate="2026-12-01T12:00:00Z"))
    impact = assess_cancellation(order, None, CATALOG, pending=waiting)
    assert impact.refusal == Refusal.CANCELLATION_UNDER_WAY
    assert impact.message == (
        "service order so-1 already has a cancellation requested for 2026-12-01T12:00:00.000Z: "
        "cancelServiceOrder cso-1"
    )


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_a_finished_order_has_nothing_left_to_cancel(state: OrderState) -> None:
    order = order_in(state)
    before = order.to_document()
    task, _ = cancel(order)
    assert order.to_document() == before
    assert task.state == TaskState.TERMINATED_WITH_ERROR
    assert task.error_message == {
        "code": "ORDER_FINISHED",
        "reason": "cancellation refused",
        "message": f"service order so-1 is {state}: there is nothing left to cancel",
        "@type": "ErrorMessage",
    }


def test_a_finished_task_cannot_move_again() -> None:
    task, _ = cancel(accepted_order())
    with pytest.raises(TaskError, match="cannot move from done to terminatedWithError"):
        task.finish(TaskState.TERMINATED_WITH_ERROR, now=at(22), actor=ACTOR)


# --- the point of no return ----------------------------------------------------------------------


def test_a_done_point_of_no_return_denies_the_cancellation_and_the_order_returns_to_its_state() -> None:
    order, plan = planned("fibre")
    complete(plan, order, "reserve")
    install = complete(plan, order, "install", minute=4)
    plan_before = plan.to_document(), [a.to_document() for a in plan.activities]
    task, steps = cancel(order, plan)
    assert steps is None
    assert order.state == S.IN_PROGRESS
    assert state_changes(order)[-2:] == [
        ("inProgress", "assessingCancellation"),
        ("assessingCancellation", "inProgress"),
    ]
    assert (plan.to_document(), [a.to_document() for a in plan.activities]) == plan_before
    assert task.state == TaskState.TERMINATED_WITH_ERROR
    assert task.error_message is not None
    assert task.error_message["code"] == "POINT_OF_NO_RETURN"
    assert task.error_message["message"] == (
        f"too late to cancel service order so-1: activity install ({install.id}) of item 1: install is "
        "done and is the point of no return; the order stays inProgress"
    )


def test_a_held_order_denied_returns_to_held() -> None:
    order, plan = planned("plain")
    complete(plan, order, "provision")
    order.move_to(S.HELD, now=at(5), actor=ACTOR)
    cancel(order, plan)
    assert order.state == S.HELD


def test_a_point_of_no_return_skipped_by_hand_counts_as_passed() -> None:
    order, plan = planned("fibre")
    complete(plan, order, "reserve")
    planning.skip(plan, order, activity(plan, "install"), reason="installed", now=at(4), actor=ACTOR)
    assert assess_cancellation(order, plan, CATALOG).refusal == Refusal.POINT_OF_NO_RETURN


def test_a_point_of_no_return_under_way_at_a_system_that_cannot_cancel_denies_it() -> None:
    order, plan = planned("copper")
    sent(plan, order, "jumper")
    impact = assess_cancellation(order, plan, CATALOG)
    assert impact.refusal == Refusal.POINT_OF_NO_RETURN
    assert "under way at legacy, which cannot cancel it" in (impact.message or "")


def test_a_point_of_no_return_under_way_at_a_system_that_cancels_is_stopped() -> None:
    order, plan = planned("plain")
    provision = sent(plan, order, "provision")
    impact = assess_cancellation(order, plan, CATALOG)
    assert impact.accepted
    assert [(e.activity.id, e.how) for e in impact.stop] == [(provision.id, Stop.CANCEL_AT_SYSTEM)]


# --- accepted: the steps ---------------------------------------------------------------------------


def test_activities_not_started_are_cancelled_and_never_run() -> None:
    order, plan = planned("line")
    sent(plan, order, "reserve")
    cancel(order, plan)
    assert order.state == S.PENDING_CANCELLATION
    assert activity(plan, "configure").state == A.CANCELLED
    assert activity(plan, "activate").state == A.CANCELLED


def test_an_activity_under_way_gets_a_withdrawal_step_that_starts_at_once() -> None:
    order, plan = planned("line")
    reserve = sent(plan, order, "reserve")
    _, steps = cancel(order, plan)
    withdrawal = step_for(plan, reserve)
    assert (withdrawal.name, withdrawal.owner, withdrawal.state) == ("cancel-reserve", "inv", A.IN_PROGRESS)
    assert steps is not None
    assert steps.started == [withdrawal]
    assert reserve.state == A.IN_PROGRESS  # still followed: its system says when it has stopped
    assert plan.cancellation is not None
    assert plan.cancellation.task_id == "cso-1"


def test_an_activity_whose_order_was_not_sent_is_held_back_and_its_dispatch_dropped() -> None:
    order, plan = planned("line")
    reserve = activity(plan, "reserve")  # started, its POST not answered
    _, steps = cancel(order, plan)
    assert reserve.state == A.BLOCKED
    assert steps is not None
    assert reserve.id in steps.dropped
    assert step_for(plan, reserve).state == A.IN_PROGRESS


def test_a_manual_task_under_way_is_withdrawn_at_once() -> None:
    order, plan = planned("fibre")
    complete(plan, order, "reserve")
    install = activity(plan, "install")
    assert install.state == A.IN_PROGRESS
    cancel(order, plan)
    assert install.state == A.CANCELLED
    assert install.reason == "withdrawn: the service order is cancelled"


def test_a_partner_order_under_way_gets_a_withdrawal_step_at_its_partner() -> None:
    order, plan = planned("offnet")
    access = activity(plan, "access")
    access.external_id = "CAR-SO-1"  # the partner has it
    preview = assess_cancellation(order, plan, CATALOG).to_document()

    _, steps = cancel(order, plan)

    assert [(e["activity"], e["how"]) for e in preview["stop"]] == [(access.id, Stop.CANCEL_AT_PARTNER)]
    withdrawal = step_for(plan, access)
    assert (withdrawal.name, withdrawal.kind.value, withdrawal.owner) == (
        "cancel-access",
        "partnerOrder",
        "carrier",
    )
    assert withdrawal.state == A.IN_PROGRESS
    assert steps is not None
    assert steps.started == [withdrawal]
    assert access.state == A.IN_PROGRESS  # still followed: the partner says when it has stopped
    assert activity(plan, "activate").state == A.CANCELLED


def test_a_partner_order_not_sent_yet_is_held_back_and_its_send_dropped() -> None:
    order, plan = planned("offnet")
    access = activity(plan, "access")  # started, its POST not answered
    _, steps = cancel(order, plan)
    assert access.state == A.BLOCKED
    assert steps is not None
    assert access.id in steps.dropped
    assert step_for(plan, access).state == A.IN_PROGRESS


def test_a_partner_order_the_partner_reports_cancelled_settles_its_withdrawal() -> None:
    order, plan = planned("offnet")
    access = activity(plan, "access")
    access.external_id = "CAR-SO-1"
    task, _ = cancel(order, plan)

    steps = downstream(plan, order, access, "cancelled")

    assert access.state == A.CANCELLED  # what was asked for, not fallout
    assert step_for(plan, access).state == A.DONE
    assert steps.complete
    finish(order, plan, task, now=at(30), actor=ACTOR)
    assert order.state == S.CANCELLED


def test_a_partner_order_learned_of_after_it_was_stopped_is_withdrawn_too() -> None:
    order, plan = planned("offnet")
    access = activity(plan, "access")
    cancel(order, plan)
    first = step_for(plan, access)
    planning.finish_move(plan, order, first, A.DONE, now=at(22), actor=ACTOR)  # none found at the partner
    settle(plan, order, catalog=CATALOG, now=at(22), actor=ACTOR, new_id=lambda: next(_ids))
    assert access.state == A.CANCELLED
    access.external_id = "CAR-SO-late"  # the send's answer came after all
    access.external_state = "acknowledged"

    steps = settle(plan, order, catalog=CATALOG, now=at(23), actor=ACTOR, new_id=lambda: next(_ids))

    [late] = [a for a in plan.activities if a.withdraws == access.id and a is not first]
    assert (late.kind.value, late.owner) == ("partnerOrder", "carrier")
    assert steps.started == [late]


def test_done_activities_are_undone_after_the_steps_of_what_depends_on_them() -> None:
    order, plan = planned("line")
    reserve = complete(plan, order, "reserve")
    configure = complete(plan, order, "configure", minute=4)
    activate = sent(plan, order, "activate")
    _, steps = cancel(order, plan)
    stop, unconfigure, release = step_for(plan, activate), step_for(plan, configure), step_for(plan, reserve)
    assert (unconfigure.name, release.name) == ("unconfigure", "release")
    assert unconfigure.predecessors == [stop.id]
    assert sorted(release.predecessors) == sorted([stop.id, unconfigure.id])
    assert steps is not None
    assert steps.started == [stop]
    assert unconfigure.resource_action == "delete"


def test_the_preview_lists_what_the_cancellation_then_does() -> None:
    order, plan = planned("line", items=2)
    reserve = complete(plan, order, "reserve")
    configure = sent(plan, order, "configure")
    other_reserve = sent(plan, order, "reserve", "2")
    impact = assess_cancellation(order, plan, CATALOG)
    preview = impact.to_document()

    cancel(order, plan)

    assert preview["cancellable"] is True
    assert [e["activity"] for e in preview["stop"]] == [a.withdraws for a in plan.activities if a.withdraws]
    assert {e["activity"] for e in preview["stop"]} == {configure.id, other_reserve.id}
    assert [e["activity"] for e in preview["undo"]] == [a.undoes for a in plan.activities if a.undoes]
    assert [e["activity"] for e in preview["undo"]] == [reserve.id]
    assert {e["activity"] for e in preview["cancel"]} == {
        a.id for a in plan.activities if a.state == A.CANCELLED
    }


# --- settling ---------------------------------------------------------------------------------------


def test_a_withdrawal_is_done_when_its_system_reports_the_order_cancelled_and_the_undo_then_runs() -> None:
    order, plan = planned("line")
    reserve = complete(plan, order, "reserve")
    configure = sent(plan, order, "configure")
    cancel(order, plan)
    steps = downstream(plan, order, configure, "cancelled")
    assert configure.state == A.CANCELLED
    assert step_for(plan, configure).state == A.DONE
    assert steps.started == [step_for(plan, reserve)]
    assert not steps.complete


def test_an_order_that_completed_before_it_could_be_cancelled_is_undone_instead() -> None:
    order, plan = planned("line")
    reserve = complete(plan, order, "reserve")
    configure = sent(plan, order, "configure")
    cancel(order, plan)
    steps = downstream(plan, order, configure, "completed")
    withdrawal, undo, release = step_for(plan, configure), None, step_for(plan, reserve)
    undo = next(a for a in plan.activities if a.undoes == configure.id)
    assert withdrawal.state == A.SKIPPED
    assert withdrawal.skip_reason == "configure completed before it could be cancelled: it is undone instead"
    assert undo.state == A.IN_PROGRESS
    assert steps.started == [undo]
    assert undo.id in release.predecessors  # the port is released after the configuration is undone


def test_a_point_of_no_return_completed_before_it_could_be_cancelled_holds_the_cancellation() -> None:
    order, plan = planned("plain")
    provision = sent(plan, order, "provision")
    cancel(order, plan)
    steps = downstream(plan, order, provision, "completed")
    withdrawal = step_for(plan, provision)
    assert withdrawal.state == A.FALLOUT
    assert "is the point of no return and cannot be undone" in (withdrawal.reason or "")
    assert order.state == S.HELD
    assert steps.held is withdrawal
    order.move_to(S.IN_PROGRESS, now=at(31), actor="operator")
    with pytest.raises(CancellationInProgress):
        check_state(order, plan)


def test_an_operator_decision_on_the_held_step_resumes_and_finishes_the_cancellation() -> None:
    order, plan = planned("plain")
    provision = sent(plan, order, "provision")
    task, _ = cancel(order, plan)
    downstream(plan, order, provision, "completed")
    withdrawal = step_for(plan, provision)
    planning.skip(plan, order, withdrawal, reason="left in place", now=at(40), actor="operator")
    steps = settle(plan, order, catalog=CATALOG, now=at(40), actor=ACTOR, new_id=lambda: next(_ids))
    assert steps.resumed
    assert steps.complete
    assert order.state == S.PENDING_CANCELLATION
    finish(order, plan, task, now=at(40), actor=ACTOR)
    assert order.state == S.CANCELLED
    assert task.state == TaskState.DONE
    assert (
        task.completion_message == "service order so-1 cancelled; not carried out: cancel-provision (skipped)"
    )


def test_the_cancellation_completes_once_every_step_has_settled() -> None:
    order, plan = planned("line")
    reserve = complete(plan, order, "reserve")
    configure = sent(plan, order, "configure")
    task, _ = cancel(order, plan)
    downstream(plan, order, configure, "cancelled")
    release = step_for(plan, reserve)
    release.external_id = "RO-release"
    steps = downstream(plan, order, release, "completed", minute=35)
    assert steps.complete
    finish(order, plan, task, now=at(35), actor=ACTOR)
    assert order.state == S.CANCELLED
    assert order.to_document()["cancellationDate"] == at(35)
    assert {i.state for i in order.all_items()} == {S.CANCELLED}
    assert (
        task.completion_message == "service order so-1 cancelled; stopped: cancel-configure; undone: release"
    )


def test_an_order_learned_of_after_its_activity_was_stopped_is_withdrawn_too() -> None:
    order, plan = planned("line")
    reserve = activity(plan, "reserve")
    cancel(order, plan)
    first = step_for(plan, reserve)
    first.reason = "never sent"
    planning.finish_move(plan, order, first, A.DONE, now=at(22), actor=ACTOR)
    settle(plan, order, catalog=CATALOG, now=at(22), actor=ACTOR, new_id=lambda: next(_ids))
    assert reserve.state == A.CANCELLED
    reserve.external_id = "RO-late"  # the POST's answer came after all
    reserve.external_state = "acknowledged"
    steps = settle(plan, order, catalog=CATALOG, now=at(23), actor=ACTOR, new_id=lambda: next(_ids))
    late = [a for a in plan.activities if a.withdraws == reserve.id and a is not first]
    assert len(late) == 1
    assert steps.started == late
    settle(plan, order, catalog=CATALOG, now=at(24), actor=ACTOR, new_id=lambda: next(_ids))
    assert len([a for a in plan.activities if a.withdraws == reserve.id]) == 2  # not added twice


def test_a_cancelling_order_moved_by_hand_is_refused() -> None:
    order, plan = planned("line")
    sent(plan, order, "reserve")
    cancel(order, plan)
    check_state(order, plan)
    order.move_to(S.HELD, now=at(25), actor="operator")
    with pytest.raises(CancellationInProgress, match="its state follows the cancellation"):
        check_state(order, plan)
