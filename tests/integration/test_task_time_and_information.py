"""Manual tasks in time (working hours, daylight saving, appointments), information asked of the
customer, and escalation assigning tasks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from provtrack.domain.clock import format_datetime
from tests.integration.coordination_harness import Coordination, coordination, item, order, partner_behaviour
from tests.integration.receiver import Receiver

__all__ = ["coordination", "partner_behaviour"]
ORDERS = "/tmf-api/serviceOrdering/v4/serviceOrder"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def test_a_three_hour_install_started_friday_at_four_finishes_monday_across_a_dst_change(
    coordination: Coordination,
) -> None:
    c = coordination
    c.clock.now = datetime(2026, 10, 23, 14, 0, tzinfo=UTC)  # Friday 16:00 in Paris (CEST)
    order_id = c.create(order(item("visit")))
    c.run_until(lambda: bool(c.tasks(serviceOrderId=order_id)))

    # One hour on Friday; the clocks go back on Sunday; two more hours from 08:00 CET on Monday.
    monday_ten_in_paris = "2026-10-26T09:00:00.000Z"
    task = c.task_of(order_id)
    assert task["expectedStartDate"] == "2026-10-23T14:00:00.000Z"
    assert task["expectedCompletionDate"] == monday_ten_in_paris
    assert c.order(order_id)["expectedCompletionDate"] == monday_ten_in_paris
    assert c.activity(order_id, "install")["plannedEndDate"] == monday_ten_in_paris

    # Nobody started it on Friday: on Monday at 08:30 CET it is expected at 11:30.
    c.clock.now = datetime(2026, 10, 26, 7, 30, tzinfo=UTC)
    for action in ("claim", "start"):
        assert c.act(task["id"], action).status_code == 200
    started = c.api.get(f"/provtrack/v1/task/{task['id']}").json()
    assert started["expectedCompletionDate"] == "2026-10-26T10:30:00.000Z"
    c.worker.run_until_idle()
    assert c.order(order_id)["expectedCompletionDate"] == "2026-10-26T10:30:00.000Z"


def test_an_appointment_bounds_the_start_of_its_task(coordination: Coordination) -> None:
    c = coordination  # Friday 2026-11-27 09:00 UTC
    appointment = {
        "id": "APT-881",
        "description": "morning visit",
        "validFor": {"startDateTime": "2026-11-30T13:00:00Z"},
    }
    visit = item("visit")
    visit["appointment"] = appointment
    order_id = c.create(order(visit))
    c.run_until(lambda: bool(c.tasks(serviceOrderId=order_id)))

    task = c.task_of(order_id)
    assert task["appointment"] == appointment
    assert task["earliestStartDate"] == "2026-11-30T13:00:00.000Z"
    # 14:00 in Paris on Monday: three hours until 17:00.
    assert task["expectedCompletionDate"] == "2026-11-30T16:00:00.000Z"
    assert c.order(order_id)["expectedCompletionDate"] == "2026-11-30T16:00:00.000Z"
    assert c.act(task["id"], "claim").status_code == 200
    early = c.act(task["id"], "start")
    assert early.status_code == 409
    assert (
        early.json()["message"]
        == f"cannot start task {task['id']} before its appointment at 2026-11-30T13:00:00.000Z"
    )

    c.clock.now = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    assert c.act(task["id"], "start").status_code == 200


def test_a_task_asks_for_information_the_order_waits_pending_and_a_patch_resumes_both(
    coordination: Coordination, receiver: Receiver
) -> None:
    c = coordination
    hub = c.api.post(
        "/tmf-api/serviceOrdering/v4/hub",
        json={"callback": receiver.url, "query": "eventType=ServiceOrderInformationRequiredEvent"},
    )
    assert hub.status_code == 201, hub.text
    order_id = c.create(order(item("visit")))
    c.run_until(lambda: bool(c.tasks(serviceOrderId=order_id)))
    task_id = c.task_of(order_id)["id"]
    for action in ("claim", "start"):
        assert c.act(task_id, action).status_code == 200

    asked = c.act(
        task_id,
        "requestInformation",
        informationRequired=[{"name": "accessCode", "description": "the building's door code"}],
    )

    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] == "waitingForInformation"
    pending = c.order(order_id)
    assert pending["state"] == "pending"
    [missing] = [e for e in pending["errorMessage"] if e["code"] == "MISSING_INFORMATION"]
    assert missing["message"] == (
        "item 1: service characteristic 'accessCode' is required: the building's door code "
        "(asked by techs for install); PATCH the order to supply it"
    )
    # The item has no characteristics yet: the patch adds the list.
    where = "/serviceOrderItem/0/service/serviceCharacteristic"
    assert missing["informationRequired"] == {"op": "add", "path": where, "characteristic": "accessCode"}
    assert c.activity(order_id, "install")["state"] == "blocked"
    c.worker.run_until_idle()
    assert receiver.wait_for_accepted(1)
    [event] = receiver.accepted
    assert event.event["eventType"] == "ServiceOrderInformationRequiredEvent"
    assert (
        event.event["event"]["serviceOrder"]["errorMessage"][-1]["informationRequired"]["characteristic"]
        == "accessCode"
    )

    # Only what was asked for may change on a pending order's item.
    other = [{"op": "add", "path": where, "value": [{"name": "floor", "value": 3}]}]
    json_patch = {"Content-Type": "application/json-patch+json"}
    refused = c.api.patch(f"{ORDERS}/{order_id}", json=other, headers=json_patch)
    assert refused.status_code == 409, refused.text
    supplied = [{"op": "add", "path": where, "value": [{"name": "accessCode", "value": "4711B"}]}]
    patched = c.api.patch(f"{ORDERS}/{order_id}", json=supplied, headers=json_patch)

    assert patched.status_code == 200, patched.text
    assert patched.json()["state"] == "inProgress"
    assert c.api.get(f"/provtrack/v1/task/{task_id}").json()["state"] == "inProgress"
    assert c.activity(order_id, "install")["state"] == "inProgress"
    assert c.act(task_id, "complete", checklist={"ontSerial": "SN-9"}).status_code == 200
    c.run_until(lambda: c.state(order_id) == "completed")


def test_an_escalation_step_assigns_the_task_of_a_late_order(coordination: Coordination) -> None:
    c = coordination
    due = format_datetime(c.clock.now + timedelta(hours=1))  # three working hours are needed
    order_id = c.create(order(item("visit"), requestedCompletionDate=due))
    c.run_until(lambda: bool(c.tasks(serviceOrderId=order_id)))
    task = c.task_of(order_id)
    assert (task["state"], task["jeopardyLevel"]) == ("queued", "inJeopardy")

    c.clock.advance(hours=1, seconds=1)
    c.worker.run_until_idle()  # the jeopardy timer: late; the rule's first step assigns bruno

    late = c.task_of(order_id)
    assert (late["state"], late["assignee"], late["jeopardyLevel"]) == ("assigned", "bruno", "late")


def test_skipping_a_task_that_waits_for_information_lets_the_order_go_on(coordination: Coordination) -> None:
    c = coordination
    order_id = c.create(order(item("visit")))
    c.run_until(lambda: bool(c.tasks(serviceOrderId=order_id)))
    task_id = c.task_of(order_id)["id"]
    for action in ("claim", "start"):
        assert c.act(task_id, action).status_code == 200
    assert (
        c.act(task_id, "requestInformation", informationRequired=[{"name": "accessCode"}]).status_code == 200
    )
    assert c.state(order_id) == "pending"

    activity = c.activity(order_id, "install")
    skipped = c.api.post(
        f"/provtrack/v1/activity/{activity['id']}/skip", json={"reason": "done without the code"}
    )

    assert skipped.status_code == 200, skipped.text
    assert c.api.get(f"/provtrack/v1/task/{task_id}").json()["state"] == "withdrawn"
    assert c.state(order_id) == "completed"
