"""Surface checks of a create body: each failure names the offending path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provtrack.domain.validation import (
    SERVER_OWNED_ORDER_FIELDS,
    InvalidOrder,
    ServerOwnedField,
    validate_items,
    validate_new_order,
)
from tests.factories import item, order_body
from tests.unit.builders import PROPERTY


def refusal(body: Any) -> InvalidOrder:
    with pytest.raises(InvalidOrder) as caught:
        validate_new_order(body)
    return caught.value


def test_a_well_formed_order_is_accepted_as_it_is() -> None:
    body = order_body()
    assert validate_new_order(copy.deepcopy(body)) == body


def test_the_body_must_be_an_object() -> None:
    assert refusal([order_body()]).path == "serviceOrder"


# --- server-owned fields -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVER_OWNED_ORDER_FIELDS))
def test_a_server_owned_order_field_is_refused_by_name(name: str) -> None:
    refused = refusal(order_body(**{name: "x"}))
    assert isinstance(refused, ServerOwnedField)
    assert refused.path == name
    assert str(refused) == f"{name}: is set by the server and must not be sent"


def test_the_server_owned_fields_are_those_tmf641_skips_on_create() -> None:
    assert {
        "id",
        "href",
        "orderDate",
        "state",
        "startDate",
        "completionDate",
        "expectedCompletionDate",
        "jeopardyAlert",
        "milestone",
        "errorMessage",
    } == SERVER_OWNED_ORDER_FIELDS


@pytest.mark.parametrize("name", ["state", "errorMessage"])
def test_a_server_owned_item_field_is_refused_with_its_path(name: str) -> None:
    refused = refusal(order_body(item("1"), item("2", serviceOrderItem=[item("2.1", **{name: "x"})])))
    assert isinstance(refused, ServerOwnedField)
    assert refused.path == f"serviceOrderItem[1].serviceOrderItem[0].{name}"


def test_a_replacement_item_list_may_carry_the_states_the_server_gave() -> None:
    items = [item("1", state="inProgress", errorMessage=[{"code": "E1"}])]
    assert validate_items(items, refuse_server_owned=False) == items


# --- items -------------------------------------------------------------------------------------


def test_an_order_needs_its_items() -> None:
    body = order_body()
    del body["serviceOrderItem"]
    refused = refusal(body)
    assert (refused.path, str(refused)) == ("serviceOrderItem", "serviceOrderItem: is required")


@pytest.mark.parametrize("items", [[], {}, "1"])
def test_the_items_must_be_a_non_empty_list(items: Any) -> None:
    refused = refusal(order_body(serviceOrderItem=items))
    assert refused.path == "serviceOrderItem"
    assert "non-empty list" in str(refused)


def test_an_item_must_be_an_object() -> None:
    assert refusal(order_body(item("1"), "2")).path == "serviceOrderItem[1]"


def test_nested_items_must_be_a_list() -> None:
    assert refusal(order_body(item("1", serviceOrderItem=item("2")))).path == (
        "serviceOrderItem[0].serviceOrderItem"
    )


@pytest.mark.parametrize("missing", ["id", "action", "service"])
def test_each_item_needs_id_action_and_service(missing: str) -> None:
    second = item("2")
    del second[missing]
    assert refusal(order_body(item("1"), second)).path == f"serviceOrderItem[1].{missing}"


def test_a_nested_item_without_id_is_named_by_its_full_path() -> None:
    nested = item("1.1")
    nested["id"] = ""
    refused = refusal(order_body(item("1", serviceOrderItem=[nested])))
    assert refused.path == "serviceOrderItem[0].serviceOrderItem[0].id"


def test_an_item_id_must_be_a_string() -> None:
    refused = refusal(order_body(item("1"), {**item("2"), "id": 2}))
    assert (refused.path, str(refused)) == (
        "serviceOrderItem[1].id",
        "serviceOrderItem[1].id: must be a string",
    )


def test_an_unknown_action_is_refused_listing_the_actions() -> None:
    refused = refusal(order_body(item("1", action="upgrade")))
    assert refused.path == "serviceOrderItem[0].action"
    assert "must be one of add, modify, delete, noChange, not 'upgrade'" in str(refused)


@pytest.mark.parametrize("service", ["svc-1", ["svc-1"]])
def test_the_service_must_be_an_object(service: Any) -> None:
    assert refusal(order_body(item("1", service=service))).path == "serviceOrderItem[0].service"


def test_an_add_item_needs_the_specification_it_provisions() -> None:
    refused = refusal(order_body(item("1"), item("2", service={"name": "iptv"})))
    assert refused.path == "serviceOrderItem[1].service.serviceSpecification.id"
    assert "required for action add" in str(refused)


def test_an_add_item_needs_a_specification_with_an_id() -> None:
    refused = refusal(order_body(item("1", service={"serviceSpecification": {"name": "ftth"}})))
    assert refused.path == "serviceOrderItem[0].service.serviceSpecification.id"


@pytest.mark.parametrize("action", ["modify", "delete"])
def test_a_modify_or_delete_item_needs_the_service_it_changes(action: str) -> None:
    refused = refusal(order_body(item("1"), item("2", action=action, service={"name": "x"})))
    assert refused.path == "serviceOrderItem[1].service.id"
    assert f"required for action {action}" in str(refused)


def test_a_no_change_item_needs_neither_specification_nor_service_id() -> None:
    validate_new_order(order_body(item("1", action="noChange", service={})))


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True])
def test_a_quantity_must_be_a_positive_integer(quantity: Any) -> None:
    assert refusal(order_body(item("1", quantity=quantity))).path == "serviceOrderItem[0].quantity"


@pytest.mark.parametrize("quantity", [3, 3.0])
def test_a_positive_quantity_is_accepted_written_as_json_schema_counts_integers(quantity: Any) -> None:
    validate_new_order(order_body(item("1", quantity=quantity)))


def test_a_date_past_the_last_utc_instant_is_refused_not_crashed_on() -> None:
    refused = refusal(order_body(requestedStartDate="9999-12-31T23:00:00-05:00"))

    assert refused.path == "requestedStartDate"
    assert "out of range" in str(refused)


def test_item_ids_are_unique_within_the_order() -> None:
    refused = refusal(order_body(item("1"), item("2"), item("1")))
    assert refused.path == "serviceOrderItem[2].id"
    assert "'1' is already the id of serviceOrderItem[0]" in str(refused)


def test_item_ids_are_unique_across_nesting_levels() -> None:
    refused = refusal(order_body(item("1", serviceOrderItem=[item("2")]), item("2")))
    assert refused.path == "serviceOrderItem[1].id"
    assert "already the id of serviceOrderItem[0].serviceOrderItem[0]" in str(refused)


def test_a_nested_item_may_not_reuse_the_id_of_its_parent() -> None:
    refused = refusal(order_body(item("1", serviceOrderItem=[item("1")])))
    assert refused.path == "serviceOrderItem[0].serviceOrderItem[0].id"


# --- relationships -----------------------------------------------------------------------------


def test_a_relationship_must_point_at_an_item_of_the_order() -> None:
    refused = refusal(order_body(item("1"), item("2", depends_on=("1", "9"))))
    assert refused.path == "serviceOrderItem[1].serviceOrderItemRelationship[1].orderItem.itemId"
    assert "'9' is not an item of this order" in str(refused)


def test_a_relationship_may_point_at_a_nested_item() -> None:
    validate_new_order(order_body(item("1", serviceOrderItem=[item("1.1")]), item("2", depends_on=("1.1",))))


def test_a_relationship_to_an_item_of_another_order_is_not_resolved_here() -> None:
    other = {"relationshipType": "dependency", "orderItem": {"itemId": "7", "serviceOrderId": "so-9"}}
    validate_new_order(order_body(item("1", serviceOrderItemRelationship=[other])))


def test_an_item_cannot_relate_to_itself() -> None:
    refused = refusal(order_body(item("1"), item("2", depends_on=("2",))))
    assert refused.path == "serviceOrderItem[1].serviceOrderItemRelationship[0].orderItem.itemId"
    assert "cannot relate to itself" in str(refused)


def test_relationships_must_not_form_a_cycle() -> None:
    refused = refusal(
        order_body(item("a", depends_on=("c",)), item("b", depends_on=("a",)), item("c", depends_on=("b",)))
    )
    assert refused.path == "serviceOrderItem[0].serviceOrderItemRelationship"
    assert str(refused).endswith("relationships form a cycle: a -> c -> b -> a")


def test_a_cycle_through_nested_items_is_found() -> None:
    body = order_body(
        item("1", serviceOrderItem=[item("1.1", depends_on=("2",))]), item("2", depends_on=("1.1",))
    )
    refused = refusal(body)
    assert refused.path == "serviceOrderItem[0].serviceOrderItem[0].serviceOrderItemRelationship"
    assert "cycle: 1.1 -> 2 -> 1.1" in str(refused)


@pytest.mark.parametrize(
    ("relationships", "path"),
    [
        ({"relationshipType": "dependency"}, "serviceOrderItem[1].serviceOrderItemRelationship"),
        (["not an object"], "serviceOrderItem[1].serviceOrderItemRelationship[0]"),
        (
            [{"orderItem": {"itemId": "1"}}],
            "serviceOrderItem[1].serviceOrderItemRelationship[0].relationshipType",
        ),
        (
            [{"relationshipType": "dependency"}],
            "serviceOrderItem[1].serviceOrderItemRelationship[0].orderItem.itemId",
        ),
        (
            [{"relationshipType": "dependency", "orderItem": {}}],
            "serviceOrderItem[1].serviceOrderItemRelationship[0].orderItem.itemId",
        ),
    ],
)
def test_a_malformed_relationship_is_named_by_its_path(relationships: Any, path: str) -> None:
    assert refusal(order_body(item("1"), item("2", serviceOrderItemRelationship=relationships))).path == path


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, set[tuple[int, int]]]:
    """A number of items and dependency edges that only point at earlier items: no cycle."""
    count = draw(st.integers(min_value=2, max_value=8))
    pairs = [(a, b) for a in range(count) for b in range(a)]
    edges = draw(st.sets(st.sampled_from(pairs), min_size=1, max_size=12))
    return count, edges


def body_of(count: int, edges: set[tuple[int, int]]) -> dict[str, Any]:
    return order_body(
        *(item(f"i{n}", depends_on=tuple(f"i{b}" for a, b in sorted(edges) if a == n)) for n in range(count))
    )


def reachable(edges: set[tuple[int, int]], start: int) -> set[int]:
    seen, frontier = {start}, [start]
    while frontier:
        frontier = [b for a, b in edges if a in frontier and b not in seen]
        seen.update(frontier)
    return seen


@PROPERTY
@given(dags())
def test_relationships_that_form_no_cycle_are_accepted(dag: tuple[int, set[tuple[int, int]]]) -> None:
    validate_new_order(body_of(*dag))


@PROPERTY
@given(dags(), st.data())
def test_one_edge_back_along_a_dependency_chain_is_refused(
    dag: tuple[int, set[tuple[int, int]]], data: st.DataObject
) -> None:
    count, edges = dag
    start, _ = data.draw(st.sampled_from(sorted(edges)))
    end = data.draw(st.sampled_from(sorted(reachable(edges, start) - {start})))
    refused = refusal(body_of(count, {*edges, (end, start)}))
    assert "relationships form a cycle" in str(refused)
    assert refused.path.endswith(".serviceOrderItemRelationship")


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "stored"),
    [
        ("2026-12-01", "2026-12-01T00:00:00.000Z"),
        ("2026-12-01T08:30:00Z", "2026-12-01T08:30:00.000Z"),
        ("2026-12-01T10:30:00.5+02:00", "2026-12-01T08:30:00.500Z"),
        ("2026-12-01T08:30:00", "2026-12-01T08:30:00.000Z"),
        ("2026-12-01T08:30:00.123456z", "2026-12-01T08:30:00.123Z"),
    ],
)
def test_client_dates_are_normalised_to_utc_with_milliseconds(given_: str, stored: str) -> None:
    checked = validate_new_order(order_body(requestedStartDate=given_, cancellationDate=given_))
    assert checked["requestedStartDate"] == stored
    assert checked["cancellationDate"] == stored


def test_normalising_dates_leaves_the_given_body_alone() -> None:
    body = order_body(requestedStartDate="2026-12-01")
    validate_new_order(body)
    assert body["requestedStartDate"] == "2026-12-01"


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "", 20261201])
def test_a_date_that_is_not_iso_8601_is_refused_by_name(value: Any) -> None:
    refused = refusal(order_body(requestedCompletionDate=value))
    assert refused.path == "requestedCompletionDate"
    assert "is not an ISO 8601 date-time" in str(refused)


def test_the_requested_completion_cannot_come_before_the_requested_start() -> None:
    refused = refusal(
        order_body(requestedStartDate="2026-12-02T00:00:00Z", requestedCompletionDate="2026-12-01T23:59:59Z")
    )
    assert (refused.path, str(refused)) == (
        "requestedCompletionDate",
        "requestedCompletionDate: is before requestedStartDate",
    )


def test_dates_in_other_offsets_are_compared_as_instants() -> None:
    # 01:00+02:00 is 23:00Z the day before: after a 22:00Z start, although its text sorts lower.
    validate_new_order(
        order_body(
            requestedStartDate="2026-12-01T22:00:00Z", requestedCompletionDate="2026-12-02T01:00:00+02:00"
        )
    )
    refused = refusal(
        order_body(
            requestedStartDate="2026-12-01T23:30:00Z", requestedCompletionDate="2026-12-02T01:00:00+02:00"
        )
    )
    assert refused.path == "requestedCompletionDate"


def test_a_completion_on_the_start_instant_is_accepted() -> None:
    validate_new_order(
        order_body(requestedStartDate="2026-12-01", requestedCompletionDate="2026-12-01T00:00:00Z")
    )
