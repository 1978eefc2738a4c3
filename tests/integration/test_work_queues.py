"""Work queues over HTTP: the queue's order, capacity, who may do what to a task, the checklist."""

from __future__ import annotations

from datetime import timedelta

from provtrack.domain.clock import format_datetime
from tests.integration.coordination_harness import Coordination, coordination, item, order, partner_behaviour

__all__ = ["coordination", "partner_behaviour"]


def _visits(c: Coordination, count: int) -> list[str]:
    ids = [c.create(order(item("visit"), externalId=f"BSS-{n}")) for n in range(count)]
    c.run_until(lambda: len(c.tasks(workGroup="techs")) == count)
    return [c.task_of(order_id)["id"] for order_id in ids]


def test_the_queue_is_ordered_by_priority_then_jeopardy_then_due_date(coordination: Coordination) -> None:
    c = coordination
    due = {days: format_datetime(c.clock.now + timedelta(days=days)) for days in (2, 3, 4, 9)}
    names = {
        c.create(order(item("visit"), priority="4")): "routine, no date",
        c.create(order(item("visit"), priority="2", requestedCompletionDate=due[3])): "due in 3 days",
        c.create(order(item("visit"), priority="2", requestedCompletionDate=due[2])): "due in 2 days",
        # Forty working hours do not fit in four days of an eight-hour day: in jeopardy.
        c.create(order(item("survey"), priority="2", requestedCompletionDate=due[4])): "in jeopardy",
        c.create(order(item("visit"), priority="1", requestedCompletionDate=due[9])): "priority 1",
    }
    c.run_until(lambda: len(c.tasks(workGroup="techs")) == 5)

    queue = c.api.get("/provtrack/v1/workGroup/techs/queue")
    assert queue.status_code == 200
    assert queue.headers["X-Total-Count"] == "5"
    assert [names[t["serviceOrder"]["id"]] for t in queue.json()] == [
        "priority 1",
        "in jeopardy",
        "due in 2 days",
        "due in 3 days",
        "routine, no date",
    ]
    assert [t["jeopardyLevel"] for t in queue.json()][1] == "inJeopardy"

    # The task follows its order: a PATCH of the priority moves it up the queue.
    routine = next(o for o, n in names.items() if n == "routine, no date")
    assert (
        c.api.patch(f"/tmf-api/serviceOrdering/v4/serviceOrder/{routine}", json={"priority": "0"}).status_code
        == 200
    )
    first = c.api.get("/provtrack/v1/workGroup/techs/queue").json()[0]
    assert (first["serviceOrder"]["id"], first["priority"]) == (routine, "0")


def test_a_group_at_capacity_refuses_one_more_start_until_a_task_is_done(coordination: Coordination) -> None:
    c = coordination
    first, second, third = _visits(c, 3)
    for task_id, member in ((first, "amelie"), (second, "bruno"), (third, "chloe")):
        assert c.act(task_id, "claim", member).status_code == 200
    assert c.act(first, "start", "amelie").status_code == 200
    assert c.act(second, "start", "bruno").status_code == 200

    refused = c.act(third, "start", "chloe")

    assert refused.status_code == 409
    assert refused.json()["code"] == "CAPACITY_REACHED"
    assert "techs has 2 tasks in progress, its capacity" in refused.json()["message"]
    assert c.api.get(f"/provtrack/v1/task/{third}").json()["state"] == "assigned"
    group = c.api.get("/provtrack/v1/workGroup/techs").json()
    assert group["inProgressByMember"] == {"amelie": 1, "bruno": 1, "chloe": 0}

    assert c.act(first, "complete", "amelie", checklist={"ontSerial": "SN-1"}).status_code == 200
    assert c.act(third, "start", "chloe").status_code == 200


def test_who_may_do_what_to_a_task_follows_its_table(coordination: Coordination) -> None:
    c = coordination
    [task_id] = _visits(c, 1)
    assert c.act(task_id, "claim", "amelie").status_code == 200

    taken = c.act(task_id, "claim", "bruno")
    assert taken.status_code == 409
    assert taken.json()["code"] == "ILLEGAL_STATE_TRANSITION"
    assert taken.json()["message"] == (
        f"cannot claim task {task_id}: it is assigned (held by amelie); claim is allowed from queued"
    )
    assert c.act(task_id, "claim", "amelie").status_code == 409  # no move into the state it is in
    assert "held by amelie, not bruno" in c.act(task_id, "start", "bruno").json()["message"]
    early = c.act(task_id, "complete", "amelie", checklist={"ontSerial": "SN-1"})
    assert early.status_code == 409
    assert "it is assigned (held by amelie); complete is allowed from inProgress" in early.json()["message"]

    # A dispatcher reassigns: a hand-back and an assignment, both on the order's timeline.
    reassigned = c.api.post(f"/provtrack/v1/task/{task_id}/reassign", json={"assignee": "bruno"})
    assert reassigned.status_code == 200
    assert (reassigned.json()["state"], reassigned.json()["assignee"]) == ("assigned", "bruno")
    stranger = c.api.post(f"/provtrack/v1/task/{task_id}/reassign", json={"assignee": "nora"})
    assert stranger.status_code == 409
    assert "nora is not a member of techs" in stranger.json()["message"]
    order_id = reassigned.json()["serviceOrder"]["id"]
    with c.store.transaction(write=False) as tx:
        moves = [
            (ch.old, ch.new)
            for ch in tx.audit_trail(order_id)
            if ch.subject == f"task[{task_id}]" and ch.attribute == "state"
        ]
    assert moves == [(None, "queued"), ("queued", "assigned"), ("assigned", "queued"), ("queued", "assigned")]


def test_a_checklist_not_filled_in_is_refused_naming_each_field(coordination: Coordination) -> None:
    c = coordination
    [task_id] = _visits(c, 1)
    for action in ("claim", "start"):
        assert c.act(task_id, action).status_code == 200

    empty = c.act(task_id, "complete", checklist={})
    wrong = c.act(task_id, "complete", checklist={"ontSerial": 1234, "colour": "blue"})

    assert (empty.status_code, empty.json()["code"]) == (400, "INVALID_CHECKLIST")
    assert empty.json()["message"] == "checklist: ontSerial: required"
    assert (
        wrong.json()["message"]
        == "checklist: colour: not a field of this checklist; ontSerial: must be a text"
    )
    assert c.api.get(f"/provtrack/v1/task/{task_id}").json()["state"] == "inProgress"
    done = c.act(task_id, "complete", checklist={"ontSerial": "SN-77"})
    assert done.status_code == 200
    assert done.json()["checklistValues"] == {"ontSerial": "SN-77"}


def test_a_failed_task_makes_its_activity_fall_out_with_the_reason_code(coordination: Coordination) -> None:
    c = coordination
    [task_id] = _visits(c, 1)
    for action in ("claim", "start"):
        assert c.act(task_id, action).status_code == 200
    assert c.act(task_id, "fail", reasonCode="teleported").status_code == 400

    failed = c.act(task_id, "fail", reasonCode="customerAbsent", reason="nobody home at 14:00")

    assert failed.json()["failure"] == {"reasonCode": "customerAbsent", "reason": "nobody home at 14:00"}
    order_id = failed.json()["serviceOrder"]["id"]
    held = c.order(order_id)
    assert held["state"] == "held"
    assert "customerAbsent: nobody home at 14:00" in held["errorMessage"][-1]["message"]
    # The operator retries the activity: a new attempt opens a new task in the queue.
    activity = c.activity(order_id, "install")
    assert c.api.post(f"/provtrack/v1/activity/{activity['id']}/retry").status_code == 200
    queued = c.tasks(serviceOrderId=order_id, state="queued")
    assert [(t["activity"]["attempt"], t["state"]) for t in queued] == [(2, "queued")]


def test_a_task_whose_activity_an_operator_skips_is_withdrawn_from_the_queue(
    coordination: Coordination,
) -> None:
    c = coordination
    [task_id] = _visits(c, 1)
    assert c.act(task_id, "claim", "amelie").status_code == 200
    order_id = c.api.get(f"/provtrack/v1/task/{task_id}").json()["serviceOrder"]["id"]
    activity = c.activity(order_id, "install")

    skipped = c.api.post(
        f"/provtrack/v1/activity/{activity['id']}/skip", json={"reason": "installed by the customer"}
    )

    assert skipped.status_code == 200, skipped.text
    assert c.api.get(f"/provtrack/v1/task/{task_id}").json()["state"] == "withdrawn"
    assert c.tasks(workGroup="techs", state="queued,assigned,inProgress") == []
    assert c.act(task_id, "start", "amelie").status_code == 409
    assert c.state(order_id) == "completed"


def test_the_tasks_of_an_order_that_ends_are_withdrawn(coordination: Coordination) -> None:
    c = coordination
    [task_id] = _visits(c, 1)
    order_id = c.api.get(f"/provtrack/v1/task/{task_id}").json()["serviceOrder"]["id"]

    cancelled = c.api.patch(
        f"/tmf-api/serviceOrdering/v4/serviceOrder/{order_id}", json={"state": "cancelled"}
    )

    assert cancelled.status_code == 200, cancelled.text
    assert c.api.get(f"/provtrack/v1/task/{task_id}").json()["state"] == "withdrawn"
    with c.store.transaction(write=False) as tx:
        [why] = [ch.new for ch in tx.audit_trail(order_id) if ch.attribute == "withdrawnBecause"]
    assert why == "the order is cancelled"


def test_a_work_group_defined_through_the_api_takes_the_catalogs_place(coordination: Coordination) -> None:
    c = coordination
    redefined = c.api.put(
        "/provtrack/v1/workGroup/techs",
        json={"members": ["amelie", "bruno"], "capacity": 1, "timeZone": "UTC"},
    )
    assert redefined.status_code == 200, redefined.text
    assert (redefined.json()["source"], redefined.json()["capacity"]) == ("api", 1)
    groups = {g["name"]: g["source"] for g in c.api.get("/provtrack/v1/workGroup").json()}
    assert groups == {"techs": "api", "noc": "catalog"}

    first, second = _visits(c, 2)
    # Round the clock now: three hours from 09:00 UTC, not the catalog's Paris office hours.
    assert (
        c.api.get(f"/provtrack/v1/task/{first}").json()["expectedCompletionDate"]
        == "2026-11-27T12:00:00.000Z"
    )
    assert "chloe is not a member of techs" in c.act(first, "claim", "chloe").json()["message"]
    for task_id, member in ((first, "amelie"), (second, "bruno")):
        assert c.act(task_id, "claim", member).status_code == 200
    assert c.act(first, "start", "amelie").status_code == 200
    assert c.act(second, "start", "bruno").json()["code"] == "CAPACITY_REACHED"

    refused = c.api.put("/provtrack/v1/workGroup/techs", json={"capacity": 0, "workingHours": {"mon": "8-5"}})
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "workGroups.techs.capacity: must be a whole number of tasks, at least 1; "
        "workGroups.techs.workingHours: '8-5' is not a range of local times such as 08:00-17:00"
    )
    assert c.api.put("/provtrack/v1/workGroup/night-shift", json={"members": ["nora"]}).status_code == 200
    assert c.api.get("/provtrack/v1/workGroup/night-shift").json()["openTasks"] == 0


def test_a_state_filter_repeated_selects_as_a_comma_list_does(coordination: Coordination) -> None:
    c = coordination
    first, second = _visits(c, 2)
    claimed = c.api.post(f"/provtrack/v1/task/{first}/claim", headers={"X-Actor": "amelie"})
    assert claimed.status_code == 200, claimed.text

    def listed(query: str) -> set[str]:
        response = c.api.get(f"/provtrack/v1/task?workGroup=techs&{query}")
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()}

    assert listed("state=queued") == {second}
    assert listed("state=queued,assigned") == {first, second}
    assert listed("state=queued&state=assigned") == {first, second}  # as generated clients send lists
