"""PATCH /serviceOrder/{id}: merge patch, JSON patch, what may change, and state changes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import FakeClock
from tests.factories import item, order_body
from tests.integration.tmf import JSON_PATCH, MERGE_PATCH, ORDERS, assert_tmf_error, create_order


@pytest.fixture
def order(client: TestClient) -> dict[str, Any]:
    """An acknowledged FTTH order with an IPTV add-on item that depends on the line."""
    return create_order(client, order_body())


def patch(client: TestClient, order: dict[str, Any], body: Any, headers: dict[str, str] = MERGE_PATCH) -> Any:
    return client.patch(f"{ORDERS}/{order['id']}", json=body, headers=headers)


def patched(
    client: TestClient, order: dict[str, Any], body: Any, headers: dict[str, str] = MERGE_PATCH
) -> Any:
    response = patch(client, order, body, headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- merge patch and JSON patch -------------------------------------------------------------------


def test_a_merge_patch_changes_what_it_names_and_keeps_the_rest(
    client: TestClient, order: dict[str, Any]
) -> None:
    result = patched(client, order, {"priority": "0", "notificationContact": "noc@operator.example"})

    assert result["priority"] == "0"
    assert result["notificationContact"] == "noc@operator.example"
    assert result == {**order, "priority": "0", "notificationContact": "noc@operator.example"}
    assert client.get(f"{ORDERS}/{order['id']}").json() == result


def test_a_merge_patch_null_removes_an_attribute(client: TestClient, order: dict[str, Any]) -> None:
    result = patched(client, order, {"externalId": None})

    assert "externalId" not in result
    assert "externalId" not in client.get(f"{ORDERS}/{order['id']}").json()


def test_a_merge_patch_replaces_the_item_list_it_is_given(client: TestClient, order: dict[str, Any]) -> None:
    items = [
        {**order["serviceOrderItem"][0], "quantity": 2},
        order["serviceOrderItem"][1],
    ]

    result = patched(client, order, {"serviceOrderItem": items})

    assert result["serviceOrderItem"][0]["quantity"] == 2
    assert result["serviceOrderItem"][1] == order["serviceOrderItem"][1]


def test_a_json_patch_applies_its_operations_in_order(client: TestClient, order: dict[str, Any]) -> None:
    operations = [
        {"op": "add", "path": "/note", "value": [{"author": "coordinator", "text": "gate code 4412"}]},
        {"op": "add", "path": "/note/-", "value": {"author": "coordinator", "text": "dog on site"}},
        {"op": "replace", "path": "/description", "value": "FTTH 2G for 12 Rue des Lilas"},
    ]

    result = patched(client, order, operations, JSON_PATCH)

    assert [n["text"] for n in result["note"]] == ["gate code 4412", "dog on site"]
    assert result["description"] == "FTTH 2G for 12 Rue des Lilas"


def test_a_json_patch_test_that_fails_changes_nothing_and_is_a_conflict(
    client: TestClient, order: dict[str, Any]
) -> None:
    operations = [
        {"op": "replace", "path": "/priority", "value": "0"},
        {"op": "test", "path": "/state", "value": "inProgress"},
    ]

    assert_tmf_error(patch(client, order, operations, JSON_PATCH), 409)
    assert client.get(f"{ORDERS}/{order['id']}").json()["priority"] == order["priority"]


def test_a_json_patch_that_is_not_a_list_of_operations_is_refused(
    client: TestClient, order: dict[str, Any]
) -> None:
    assert_tmf_error(patch(client, order, {"priority": "0"}, JSON_PATCH), 400, "INVALID_PATCH")


def test_a_json_patch_on_a_missing_path_is_refused(client: TestClient, order: dict[str, Any]) -> None:
    operations = [{"op": "replace", "path": "/notificationContact", "value": "x"}]

    assert_tmf_error(patch(client, order, operations, JSON_PATCH), 400, "INVALID_PATCH")


def test_a_merge_patch_must_be_an_object(client: TestClient, order: dict[str, Any]) -> None:
    assert_tmf_error(patch(client, order, ["priority"]), 400, "INVALID_PATCH")


@pytest.mark.parametrize("content_type", ["application/json", "application/json;charset=utf-8"])
def test_application_json_is_taken_as_a_merge_patch(
    client: TestClient, order: dict[str, Any], content_type: str
) -> None:
    result = patched(client, order, {"priority": "4", "externalId": None}, {"Content-Type": content_type})

    assert result["priority"] == "4"
    assert "externalId" not in result


def test_a_patched_requested_date_is_stored_in_utc(client: TestClient, order: dict[str, Any]) -> None:
    result = patched(client, order, {"requestedStartDate": "2026-12-02T10:00:00+01:00"})

    assert result["requestedStartDate"] == "2026-12-02T09:00:00.000Z"


def test_fields_selects_what_the_patch_response_carries(client: TestClient, order: dict[str, Any]) -> None:
    response = client.patch(
        f"{ORDERS}/{order['id']}?fields=priority", json={"priority": "0"}, headers=MERGE_PATCH
    )

    assert response.json() == {"id": order["id"], "href": order["href"], "priority": "0"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/json-patch-query+json",
        "application/x-www-form-urlencoded",
    ],
)
def test_an_unsupported_content_type_is_415(
    client: TestClient, order: dict[str, Any], content_type: str
) -> None:
    response = client.patch(
        f"{ORDERS}/{order['id']}", content=b'{"priority": "0"}', headers={"Content-Type": content_type}
    )

    message = assert_tmf_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/merge-patch+json" in message
    assert client.get(f"{ORDERS}/{order['id']}").json()["priority"] == order["priority"]


def test_a_patch_without_a_content_type_is_415(client: TestClient, order: dict[str, Any]) -> None:
    response = client.patch(f"{ORDERS}/{order['id']}", content=b'{"priority": "0"}')

    assert_tmf_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_patching_an_unknown_order_is_404(client: TestClient) -> None:
    response = client.patch(f"{ORDERS}/no-such-order", json={"priority": "0"}, headers=MERGE_PATCH)

    assert "no-such-order" in assert_tmf_error(response, 404, "NOT_FOUND")


# --- what may not change --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", "another-id"),
        ("href", "http://elsewhere.example/serviceOrder/1"),
        ("orderDate", "2026-01-01T00:00:00Z"),
        ("startDate", "2026-11-27T09:00:00Z"),
        ("completionDate", "2026-12-01T09:00:00Z"),
        ("expectedCompletionDate", "2026-12-01T09:00:00Z"),
        ("cancellationDate", "2026-12-01T09:00:00Z"),
        ("category", "business"),
        ("@type", "BroadbandServiceOrder"),
        ("jeopardyAlert", [{"id": "j1", "jeopardyType": "Critical"}]),
        ("milestone", [{"id": "m1", "name": "ONT installed"}]),
        ("errorMessage", [{"code": "E1", "reason": "x"}]),
    ],
)
def test_a_field_that_cannot_be_patched_is_refused_naming_it(
    client: TestClient, order: dict[str, Any], name: str, value: Any
) -> None:
    message = assert_tmf_error(patch(client, order, {name: value}), 400)

    assert message.startswith(f"{name}:")
    assert client.get(f"{ORDERS}/{order['id']}").json() == order


def test_a_json_patch_of_a_field_that_cannot_be_patched_is_refused_naming_it(
    client: TestClient, order: dict[str, Any]
) -> None:
    operations = [{"op": "replace", "path": "/orderDate", "value": "2026-01-01T00:00:00.000Z"}]

    assert assert_tmf_error(patch(client, order, operations, JSON_PATCH), 400).startswith("orderDate:")


def test_an_item_state_is_not_patchable(client: TestClient, order: dict[str, Any]) -> None:
    items = [{**order["serviceOrderItem"][0], "state": "completed"}, order["serviceOrderItem"][1]]

    message = assert_tmf_error(patch(client, order, {"serviceOrderItem": items}), 400)

    assert message.startswith("serviceOrderItem[0].state")


def test_an_item_action_is_not_patchable(client: TestClient, order: dict[str, Any]) -> None:
    operations = [{"op": "replace", "path": "/serviceOrderItem/1/action", "value": "noChange"}]

    message = assert_tmf_error(patch(client, order, operations, JSON_PATCH), 400)

    assert message.startswith("serviceOrderItem[1].action")


def test_an_item_can_be_added_to_an_order_not_planned_yet(client: TestClient, order: dict[str, Any]) -> None:
    sim = item("3", spec="mobile-sim-port-in")

    result = patched(client, order, {"serviceOrderItem": [*order["serviceOrderItem"], sim]})

    assert [i["id"] for i in result["serviceOrderItem"]] == ["1", "2", "3"]
    assert result["serviceOrderItem"][2]["state"] == "acknowledged"


def test_an_item_can_be_removed_from_an_order_not_planned_yet(
    client: TestClient, order: dict[str, Any]
) -> None:
    operations = [{"op": "remove", "path": "/serviceOrderItem/1"}]

    result = patched(client, order, operations, JSON_PATCH)

    assert [i["id"] for i in result["serviceOrderItem"]] == ["1"]


def test_an_item_can_change_before_the_order_starts(client: TestClient, order: dict[str, Any]) -> None:
    operations = [
        {
            "op": "add",
            "path": "/serviceOrderItem/0/service/serviceCharacteristic",
            "value": [{"name": "downloadMbps", "value": 2000}],
        }
    ]

    result = patched(client, order, operations, JSON_PATCH)

    assert result["serviceOrderItem"][0]["service"]["serviceCharacteristic"] == [
        {"name": "downloadMbps", "value": 2000}
    ]


def test_the_items_of_a_finished_order_cannot_change(client: TestClient, order: dict[str, Any]) -> None:
    patched(client, order, {"state": "inProgress"})
    patched(client, order, {"state": "completed"})
    operations = [{"op": "add", "path": "/serviceOrderItem/0/quantity", "value": 2}]

    message = assert_tmf_error(patch(client, order, operations, JSON_PATCH), 409)

    assert "completed" in message


# --- state changes --------------------------------------------------------------------------------


def test_starting_an_order_moves_it_to_in_progress_and_sets_its_start_date(
    client: TestClient, order: dict[str, Any], clock: FakeClock
) -> None:
    clock.advance(hours=3)

    result = patched(client, order, {"state": "inProgress"})

    assert result["state"] == "inProgress"
    assert result["startDate"] == "2026-11-27T12:00:00.000Z"
    assert result["orderDate"] == order["orderDate"]


def test_the_start_date_is_kept_when_a_held_order_resumes(
    client: TestClient, order: dict[str, Any], clock: FakeClock
) -> None:
    patched(client, order, {"state": "inProgress"})
    clock.advance(days=1)
    patched(client, order, {"state": "held"})
    clock.advance(days=2)

    result = patched(client, order, {"state": "inProgress"})

    assert result["startDate"] == "2026-11-27T09:00:00.000Z"


def test_a_state_change_the_table_does_not_allow_is_409_listing_the_allowed_next_states(
    client: TestClient, order: dict[str, Any]
) -> None:
    message = assert_tmf_error(patch(client, order, {"state": "completed"}), 409, "ILLEGAL_STATE_TRANSITION")

    assert "acknowledged" in message
    assert "completed" in message
    assert "assessingCancellation, cancelled, inProgress, rejected" in message
    assert client.get(f"{ORDERS}/{order['id']}").json()["state"] == "acknowledged"


def test_a_finished_order_says_it_has_no_next_state(client: TestClient, order: dict[str, Any]) -> None:
    patched(client, order, {"state": "inProgress"})
    patched(client, order, {"state": "completed"})

    message = assert_tmf_error(patch(client, order, {"state": "inProgress"}), 409, "ILLEGAL_STATE_TRANSITION")

    assert "allowed next states: none (completed is terminal)" in message


def test_a_state_that_does_not_exist_is_refused_naming_the_states(
    client: TestClient, order: dict[str, Any]
) -> None:
    message = assert_tmf_error(patch(client, order, {"state": "started"}), 400)

    assert message.startswith("state:")
    assert "inProgress" in message


def test_completing_an_order_completes_its_open_items_and_sets_the_completion_date(
    client: TestClient, order: dict[str, Any], clock: FakeClock
) -> None:
    patched(client, order, {"state": "inProgress"})
    clock.advance(days=4, hours=2)

    result = patched(client, order, {"state": "completed"})

    assert result["state"] == "completed"
    assert {i["state"] for i in result["serviceOrderItem"]} == {"completed"}
    assert result["completionDate"] == "2026-12-01T11:00:00.000Z"


def test_cancelling_an_acknowledged_order_cancels_every_item_nested_ones_too(
    client: TestClient, clock: FakeClock
) -> None:
    ont = item("ont", spec="ont-install")
    order = create_order(client, order_body(item("line", serviceOrderItem=[ont])))
    clock.advance(minutes=20)

    result = patched(client, order, {"state": "cancelled"})

    assert result["state"] == "cancelled"
    assert result["serviceOrderItem"][0]["state"] == "cancelled"
    assert result["serviceOrderItem"][0]["serviceOrderItem"][0]["state"] == "cancelled"
    assert result["cancellationDate"] == "2026-11-27T09:20:00.000Z"


def test_failing_an_order_in_progress_fails_its_open_items(client: TestClient, order: dict[str, Any]) -> None:
    patched(client, order, {"state": "inProgress"})

    result = patched(client, order, {"state": "failed"})

    assert {i["state"] for i in result["serviceOrderItem"]} == {"failed"}
    assert "completionDate" not in result


def test_a_state_change_through_a_json_patch_follows_the_same_table(
    client: TestClient, order: dict[str, Any]
) -> None:
    operations = [{"op": "replace", "path": "/state", "value": "rejected"}]

    result = patched(client, order, operations, JSON_PATCH)

    assert result["state"] == "rejected"
    assert {i["state"] for i in result["serviceOrderItem"]} == {"rejected"}


def test_a_finished_order_still_takes_notes_but_nothing_else(
    client: TestClient, order: dict[str, Any]
) -> None:
    patched(client, order, {"state": "cancelled"})

    noted = patched(client, order, {"note": [{"author": "coordinator", "text": "customer moved"}]})
    message = assert_tmf_error(patch(client, order, {"priority": "0"}), 409)

    assert noted["note"][0]["text"] == "customer moved"
    assert "priority" in message


def test_the_cancellation_states_are_not_entered_by_patch(client: TestClient) -> None:
    order = create_order(client, order_body())
    response = client.patch(
        f"{ORDERS}/{order['id']}",
        json={"state": "assessingCancellation"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 409
    assert "POST /cancelServiceOrder" in response.json()["message"]
    assert client.get(f"{ORDERS}/{order['id']}").json()["state"] == "acknowledged"


def test_a_merge_patch_may_send_back_the_unchanged_href(client: TestClient) -> None:
    order = create_order(client, order_body())
    response = client.patch(
        order["href"].replace("http://testserver", ""),
        json={"href": order["href"], "description": "FTTH 1G, second floor"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "FTTH 1G, second floor"
