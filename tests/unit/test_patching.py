"""PATCH of a service order: RFC 7396, RFC 6902, and what TMF641 lets a patch change."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from provtrack.domain.model import EventType, ServiceOrder
from provtrack.domain.patching import (
    NOT_PATCHABLE,
    PATCHABLE_WHEN_TERMINAL,
    MalformedPatch,
    NotPatchable,
    PatchConflict,
    apply_json_patch,
    apply_update,
    merge_patch,
)
from provtrack.domain.states import IllegalTransition, OrderState
from provtrack.domain.validation import InvalidOrder
from tests.factories import item
from tests.unit.builders import ACTOR, accepted_order, at, order_in

S = OrderState

# --- RFC 7396 ----------------------------------------------------------------------------------

# RFC 7396 Appendix A, every example: (target, patch, result).
RFC_7396_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
def test_merge_patch_gives_the_results_of_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
def test_merge_patch_leaves_its_arguments_alone(target: Any, patch: Any, result: Any) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    merged = merge_patch(target, patch)
    if isinstance(merged, dict):
        merged["added-after"] = True
    assert (target, patch) == (target_before, patch_before)


# --- RFC 6902 ----------------------------------------------------------------------------------


def test_a_json_patch_applies_its_operations_in_order() -> None:
    document = {"description": "old", "note": [{"text": "a"}]}
    patched = apply_json_patch(
        document,
        [
            {"op": "replace", "path": "/description", "value": "new"},
            {"op": "add", "path": "/note/-", "value": {"text": "b"}},
            {"op": "remove", "path": "/note/0"},
            {"op": "test", "path": "/description", "value": "new"},
        ],
    )
    assert patched == {"description": "new", "note": [{"text": "b"}]}
    assert document == {"description": "old", "note": [{"text": "a"}]}


def test_a_failed_json_patch_test_is_a_conflict() -> None:
    with pytest.raises(PatchConflict, match="test failed"):
        apply_json_patch({"state": "inProgress"}, [{"op": "test", "path": "/state", "value": "acknowledged"}])


@pytest.mark.parametrize(
    "operations",
    [
        {"op": "replace", "path": "/description", "value": "x"},
        [{"op": "jump", "path": "/description"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "description", "value": "x"}],
        [{"op": "replace", "path": "", "value": ["not", "an", "object"]}],
        ["not an operation"],
    ],
)
def test_a_json_patch_that_cannot_apply_is_malformed(operations: Any) -> None:
    with pytest.raises(MalformedPatch):
        apply_json_patch({"description": "old"}, operations)


# --- apply_update ------------------------------------------------------------------------------


def patched(order: ServiceOrder, patch: dict[str, Any], *, now: str = at(30)) -> ServiceOrder:
    apply_update(order, merge_patch(order.to_document(), patch), now=now, actor=ACTOR)
    return order


def test_a_client_field_is_changed_recorded_and_announced() -> None:
    order = patched(accepted_order(), {"description": "FTTH 2G"})
    assert order.attributes["description"] == "FTTH 2G"
    change = order.changes[-1]
    assert (change.subject, change.attribute, change.new, change.at) == (
        "serviceOrder",
        "description",
        "FTTH 2G",
        at(30),
    )
    assert order.events[-1].event_type == EventType.ORDER_ATTRIBUTE_VALUE_CHANGE


def test_a_null_in_a_merge_patch_removes_a_client_field() -> None:
    order = patched(accepted_order(), {"externalId": None})
    assert "externalId" not in order.to_document()
    assert (order.changes[-1].old, order.changes[-1].new) == ("BSS-0001", None)


def test_a_patch_that_changes_nothing_records_nothing() -> None:
    order = accepted_order()
    patched(order, {"description": order.attributes["description"]})
    assert len(order.changes) == 1


def test_requested_dates_are_normalised() -> None:
    order = patched(accepted_order(), {"requestedStartDate": "2026-12-01T10:00:00+01:00"})
    assert order.attributes["requestedStartDate"] == "2026-12-01T09:00:00.000Z"


def test_a_requested_completion_before_the_requested_start_is_refused() -> None:
    order = accepted_order(requestedStartDate="2026-12-10T00:00:00.000Z")
    with pytest.raises(InvalidOrder) as refused:
        patched(order, {"requestedCompletionDate": "2026-12-09"})
    assert refused.value.path == "requestedCompletionDate"


def _different(name: str, value: Any) -> Any:
    return [{"id": "x"}] if isinstance(value, list) else f"{value}-changed"


@pytest.mark.parametrize("name", sorted(NOT_PATCHABLE))
def test_a_field_that_cannot_be_patched_is_refused_by_name(name: str) -> None:
    order = order_in(S.IN_PROGRESS)
    document = order.to_document()
    document[name] = _different(name, document.get(name, "x"))
    with pytest.raises(NotPatchable) as refused:
        apply_update(order, document, now=at(30), actor=ACTOR)
    assert refused.value.path == name
    assert str(refused.value) == f"{name}: cannot be patched"


def test_the_fields_tmf641_skips_on_update_cannot_be_patched() -> None:
    skipped = {"id", "href", "orderDate", "jeopardyAlert", "errorMessage", "milestone", "@baseType"}
    skipped |= {"@schemaLocation", "@type", "cancellationDate", "cancellationReason", "category"}
    skipped |= {"completionDate", "startDate"}
    assert skipped <= NOT_PATCHABLE


def test_an_unchanged_server_field_in_the_patched_document_is_fine() -> None:
    order = order_in(S.IN_PROGRESS)
    apply_update(order, {**order.to_document(), "description": "x"}, now=at(30), actor=ACTOR)
    assert order.attributes["description"] == "x"


@pytest.mark.parametrize("state", [S.COMPLETED, S.CANCELLED, S.REJECTED])
def test_a_finished_order_still_takes_annotations(state: OrderState) -> None:
    order = patched(order_in(state), {"note": [{"text": "customer called"}], "description": "closed"})
    assert order.attributes["note"] == [{"text": "customer called"}]


def test_annotations_are_notes_references_parties_and_description() -> None:
    assert {"note", "externalReference", "relatedParty", "description"} == PATCHABLE_WHEN_TERMINAL


@pytest.mark.parametrize(
    "patch",
    [{"externalId": "BSS-9"}, {"priority": "0"}, {"requestedStartDate": "2026-12-01"}],
)
def test_a_finished_order_refuses_other_changes(patch: dict[str, Any]) -> None:
    order = order_in(S.COMPLETED)
    with pytest.raises(PatchConflict) as refused:
        patched(order, patch)
    message = str(refused.value)
    assert "service order so-1 is completed" in message
    assert "only description, externalReference, note, relatedParty can still change" in message


def test_a_finished_order_refuses_a_new_state_as_terminal() -> None:
    with pytest.raises(IllegalTransition, match=r"allowed next states: none \(completed is terminal\)"):
        patched(order_in(S.COMPLETED), {"state": "inProgress"})


def test_the_state_moves_through_the_table() -> None:
    order = patched(accepted_order(), {"state": "inProgress"}, now=at(31))
    assert order.state == S.IN_PROGRESS
    assert order.start_date == at(31)


def test_a_state_the_table_does_not_allow_lists_the_allowed_states() -> None:
    with pytest.raises(
        IllegalTransition, match="allowed next states: assessingCancellation, cancelled, inProgress, rejected"
    ):
        patched(accepted_order(), {"state": "completed"})


@pytest.mark.parametrize("state", ["done", None, 3])
def test_a_state_that_is_not_a_state_is_refused(state: Any) -> None:
    order = accepted_order()
    document = {**order.to_document(), "state": state}
    with pytest.raises(InvalidOrder) as refused:
        apply_update(order, document, now=at(30), actor=ACTOR)
    assert refused.value.path == "state"


# --- items in a patch --------------------------------------------------------------------------


def items_of(order: ServiceOrder) -> list[dict[str, Any]]:
    return copy.deepcopy(order.to_document()["serviceOrderItem"])


def test_item_attributes_change_while_the_order_is_acknowledged() -> None:
    order = accepted_order(item("1"), item("2", serviceOrderItem=[item("2.1")]))
    items = items_of(order)
    items[1]["serviceOrderItem"][0]["quantity"] = 2
    patched(order, {"serviceOrderItem": items})
    assert order.item("2.1").attributes["quantity"] == 2
    assert order.changes[-1].subject == "serviceOrderItem[2.1]"


def test_item_attributes_are_frozen_once_the_order_started() -> None:
    order = order_in(S.IN_PROGRESS, items=2)
    items = items_of(order)
    items[1]["quantity"] = 2
    with pytest.raises(
        PatchConflict, match=r"serviceOrderItem\[1\]: items can change only before the order starts"
    ):
        patched(order, {"serviceOrderItem": items})


def test_items_cannot_be_added() -> None:
    order = accepted_order()
    with pytest.raises(InvalidOrder, match="added: 2; cancel the order and submit a new one") as refused:
        patched(order, {"serviceOrderItem": [*items_of(order), item("2")]})
    assert refused.value.path == "serviceOrderItem"


def test_items_cannot_be_removed() -> None:
    order = accepted_order(item("1"), item("2"))
    with pytest.raises(InvalidOrder, match="removed: 1"):
        patched(order, {"serviceOrderItem": items_of(order)[1:]})


def test_the_item_list_cannot_be_removed() -> None:
    with pytest.raises(InvalidOrder) as refused:
        patched(accepted_order(), {"serviceOrderItem": None})
    assert refused.value.path == "serviceOrderItem"


def test_an_item_action_cannot_be_patched() -> None:
    order = accepted_order(item("1"), item("2"))
    items = items_of(order)
    items[1]["action"] = "noChange"
    with pytest.raises(NotPatchable) as refused:
        patched(order, {"serviceOrderItem": items})
    assert refused.value.path == "serviceOrderItem[1].action"


def test_an_item_state_cannot_be_patched() -> None:
    order = accepted_order(item("1", serviceOrderItem=[item("1.1")]))
    items = items_of(order)
    items[0]["serviceOrderItem"][0]["state"] = "completed"
    with pytest.raises(NotPatchable) as refused:
        patched(order, {"serviceOrderItem": items})
    assert refused.value.path == "serviceOrderItem[0].serviceOrderItem[0].state"


def test_an_item_error_message_cannot_be_patched() -> None:
    order = accepted_order()
    items = items_of(order)
    items[0]["errorMessage"] = [{"code": "mine"}]
    with pytest.raises(NotPatchable) as refused:
        patched(order, {"serviceOrderItem": items})
    assert refused.value.path == "serviceOrderItem[0].errorMessage"


def test_a_json_patch_on_an_item_goes_through_the_same_rules() -> None:
    order = order_in(S.IN_PROGRESS)
    after = apply_json_patch(
        order.to_document(), [{"op": "replace", "path": "/serviceOrderItem/0/action", "value": "noChange"}]
    )
    with pytest.raises(NotPatchable, match=r"serviceOrderItem\[0\].action"):
        apply_update(order, after, now=at(30), actor=ACTOR)
