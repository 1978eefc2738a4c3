"""GET /serviceOrder/{id} and GET /serviceOrder: field selection, filtering, sorting and paging (TMF630)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import FakeClock
from tests.factories import business_ethernet_body, iptv_add_on_body, item, order_body, sim_port_in_body
from tests.integration.tmf import MERGE_PATCH, ORDERS, assert_tmf_error, create_order

Orders = dict[str, dict[str, Any]]


@pytest.fixture
def orders(client: TestClient, clock: FakeClock) -> Orders:
    """Four orders an hour apart (09:00 to 12:00); the business ethernet one is in progress.

    | name  | externalId | category    | priority | item specs                        |
    | ftth  | BSS-1001   | residential | 1        | ftth-residential, iptv-addon      |
    | eline | BSS-1002   | business    | 3        | business-ethernet-eline (qty 2)   |
    | sim   | BSS-1003   | mobile      | 2        | mobile-sim-port-in                |
    | iptv  | BSS-1004   | residential | 2        | (modify), iptv-addon              |
    """
    bodies = {
        "ftth": order_body(
            item("1", spec="ftth-residential", characteristics={"profile": "residential-1g"}),
            item("2", spec="iptv-addon", depends_on=("1",)),
            externalId="BSS-1001",
            description="FTTH 1G, 12 Rue des Lilas",
            requestedStartDate="2026-12-01T08:00:00Z",
        ),
        "eline": business_ethernet_body(
            externalId="BSS-1002",
            requestedStartDate="2026-12-07T08:00:00Z",
            requestedCompletionDate="2026-12-21T17:00:00Z",
        ),
        "sim": sim_port_in_body(externalId="BSS-1003", requestedStartDate="2026-11-30T08:00:00Z"),
        "iptv": iptv_add_on_body(externalId="BSS-1004"),
    }
    bodies["eline"]["serviceOrderItem"][0]["quantity"] = 2
    created = {}
    for index, (name, body) in enumerate(bodies.items()):
        if index:
            clock.advance(hours=1)
        created[name] = create_order(client, body)
    started = client.patch(
        f"{ORDERS}/{created['eline']['id']}", json={"state": "inProgress"}, headers=MERGE_PATCH
    )
    assert started.status_code == 200, started.text
    created["eline"] = started.json()
    return created


def names(response: Any, orders: Orders) -> list[str]:
    """The fixture names of the orders in a list response, in the order returned."""
    by_id = {order["id"]: name for name, order in orders.items()}
    return [by_id[order["id"]] for order in response.json()]


def listed(client: TestClient, orders: Orders, query: str) -> list[str]:
    response = client.get(f"{ORDERS}?{query}")
    assert response.status_code == 200, response.text
    return names(response, orders)


# --- by id ----------------------------------------------------------------------------------------


def test_an_order_is_read_back_by_id(client: TestClient, orders: Orders) -> None:
    eline = orders["eline"]

    response = client.get(f"{ORDERS}/{eline['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == eline
    assert response.json()["href"] == f"http://testserver{ORDERS}/{eline['id']}"


def test_fields_selects_first_level_attributes_and_keeps_id_and_href(
    client: TestClient, orders: Orders
) -> None:
    order = orders["ftth"]

    selected = client.get(f"{ORDERS}/{order['id']}?fields=state,externalId").json()

    assert selected == {
        "id": order["id"],
        "href": order["href"],
        "state": "acknowledged",
        "externalId": "BSS-1001",
    }


def test_fields_selects_nested_attributes_with_dots(client: TestClient, orders: Orders) -> None:
    order = orders["ftth"]

    selected = client.get(
        f"{ORDERS}/{order['id']}?fields=serviceOrderItem.id,serviceOrderItem.service.serviceSpecification.id"
    ).json()

    assert selected == {
        "id": order["id"],
        "href": order["href"],
        "serviceOrderItem": [
            {"id": "1", "service": {"serviceSpecification": {"id": "ftth-residential"}}},
            {"id": "2", "service": {"serviceSpecification": {"id": "iptv-addon"}}},
        ],
    }


def test_fields_none_returns_only_id_and_href(client: TestClient, orders: Orders) -> None:
    order = orders["sim"]

    assert client.get(f"{ORDERS}/{order['id']}?fields=none").json() == {
        "id": order["id"],
        "href": order["href"],
    }


def test_fields_applies_to_every_order_of_a_list(client: TestClient, orders: Orders) -> None:
    response = client.get(f"{ORDERS}?fields=state&sort=orderDate")

    assert response.json() == [
        {"id": o["id"], "href": o["href"], "state": o["state"]}
        for o in (orders["ftth"], orders["eline"], orders["sim"], orders["iptv"])
    ]


def test_a_list_with_fields_none_carries_only_ids_and_hrefs(client: TestClient, orders: Orders) -> None:
    listed_orders = client.get(f"{ORDERS}?fields=none").json()

    assert len(listed_orders) == 4
    assert all(set(o) == {"id", "href"} for o in listed_orders)


def test_listed_orders_are_the_full_documents_by_default(client: TestClient, orders: Orders) -> None:
    by_id = {o["id"]: o for o in client.get(ORDERS).json()}

    assert by_id == {o["id"]: o for o in orders.values()}


# --- filtering ------------------------------------------------------------------------------------


def test_orders_are_filtered_by_equality_on_a_first_level_attribute(
    client: TestClient, orders: Orders
) -> None:
    assert listed(client, orders, "category=business") == ["eline"]
    assert listed(client, orders, "state=inProgress") == ["eline"]
    assert sorted(listed(client, orders, "priority=2")) == ["iptv", "sim"]


def test_orders_are_filtered_on_an_attribute_kept_only_in_the_document(
    client: TestClient, orders: Orders
) -> None:
    assert listed(client, orders, "requestedStartDate=2026-11-30T08:00:00Z") == ["sim"]
    assert listed(client, orders, "@type=ServiceOrder&category=mobile") == ["sim"]


def test_orders_are_filtered_by_the_specification_of_any_of_their_items(
    client: TestClient, orders: Orders
) -> None:
    query = "serviceOrderItem.service.serviceSpecification.id=iptv-addon&sort=orderDate"

    assert listed(client, orders, query) == ["ftth", "iptv"]


def test_orders_are_filtered_on_a_dotted_attribute_of_a_related_party(
    client: TestClient, orders: Orders
) -> None:
    assert listed(client, orders, "relatedParty.id=cust-acme") == ["eline"]
    assert listed(client, orders, "serviceOrderItem.service.id=svc-ftth-0042") == ["iptv"]


def test_several_filters_must_all_match(client: TestClient, orders: Orders) -> None:
    assert listed(client, orders, "category=residential&priority=2") == ["iptv"]


def test_comma_separated_values_are_alternatives(client: TestClient, orders: Orders) -> None:
    query = "category=business,mobile&sort=orderDate"

    assert listed(client, orders, query) == ["eline", "sim"]


@pytest.mark.parametrize("query", ["category=business&category=mobile", "category=business;category=mobile"])
def test_a_repeated_attribute_is_an_alternative_too(client: TestClient, orders: Orders, query: str) -> None:
    assert listed(client, orders, f"{query}&sort=orderDate") == ["eline", "sim"]


def test_alternatives_work_on_a_nested_attribute(client: TestClient, orders: Orders) -> None:
    query = "serviceOrderItem.service.serviceSpecification.id=mobile-sim-port-in,business-ethernet-eline"

    assert sorted(listed(client, orders, query)) == ["eline", "sim"]


@pytest.mark.parametrize(
    "query", ["category.ne=residential", "category!=residential", "category%21=residential"]
)
def test_ne_leaves_out_the_orders_with_that_value(client: TestClient, orders: Orders, query: str) -> None:
    assert listed(client, orders, f"{query}&sort=orderDate") == ["eline", "sim"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("orderDate.gt=2026-11-27T10:00:00Z", ["sim", "iptv"]),
        ("orderDate.gte=2026-11-27T10:00:00Z", ["eline", "sim", "iptv"]),
        ("orderDate.lt=2026-11-27T10:00:00Z", ["ftth"]),
        ("orderDate.lte=2026-11-27T10:00:00Z", ["ftth", "eline"]),
        ("orderDate.gte=2026-11-27T10:00:00Z&orderDate.lt=2026-11-27T12:00:00Z", ["eline", "sim"]),
        ("orderDate.gt=2026-11-27T10:30:00%2B01:00", ["eline", "sim", "iptv"]),
        ("requestedStartDate.gte=2026-12-01T08:00:00Z", ["ftth", "eline"]),
        ("requestedStartDate.lt=2026-12-01", ["sim"]),
        ("requestedCompletionDate.lte=2026-12-31T00:00:00Z", ["eline"]),
    ],
)
def test_dates_are_compared_with_gt_gte_lt_lte(
    client: TestClient, orders: Orders, query: str, expected: list[str]
) -> None:
    assert listed(client, orders, f"{query}&sort=orderDate") == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("priority.gt=1", ["eline", "sim", "iptv"]),
        ("priority.gte=3", ["eline"]),
        ("priority.lt=2", ["ftth"]),
        ("priority.lte=2", ["ftth", "sim", "iptv"]),
        ("serviceOrderItem.quantity.gte=2", ["eline"]),
        ("serviceOrderItem.service.serviceCharacteristic.value.gt=1000", ["eline"]),
    ],
)
def test_numbers_are_compared_as_numbers(
    client: TestClient, orders: Orders, query: str, expected: list[str]
) -> None:
    assert listed(client, orders, f"{query}&sort=orderDate") == expected


def test_numbers_are_not_compared_as_text(client: TestClient, orders: Orders) -> None:
    # As text, "3" > "10" and "residential-1g" > "1000"; as numbers neither is.
    assert listed(client, orders, "priority.gte=10") == []
    assert listed(client, orders, "serviceOrderItem.service.serviceCharacteristic.value.gte=10000") == []


def test_a_value_that_is_not_a_number_is_left_out_of_a_numeric_comparison(client: TestClient) -> None:
    # priority itself is "0" to "4" (refused otherwise); an extension attribute may hold anything
    urgent = create_order(client, sim_port_in_body(customerRank=1))
    create_order(client, sim_port_in_body(customerRank="high"))

    response = client.get(f"{ORDERS}?customerRank.lt=2")

    assert [o["id"] for o in response.json()] == [urgent["id"]]


def test_quoted_values_are_matched_without_their_quotes(client: TestClient, orders: Orders) -> None:
    assert listed(client, orders, 'externalId="BSS-1002"') == ["eline"]
    assert listed(client, orders, "externalId='BSS-1003'") == ["sim"]


def test_a_quoted_value_may_contain_a_comma(client: TestClient, orders: Orders) -> None:
    assert listed(client, orders, 'description="FTTH 1G, 12 Rue des Lilas"') == ["ftth"]


@pytest.mark.parametrize(
    "query",
    [
        "orderDate>=2026-11-27T11:00:00Z",
        "orderDate%3E%3D2026-11-27T11:00:00Z",
    ],
    ids=["plain", "percent-encoded"],
)
def test_the_symbol_form_of_an_operator_filters_like_its_name(
    client: TestClient, orders: Orders, query: str
) -> None:
    assert listed(client, orders, f"{query}&sort=orderDate") == ["sim", "iptv"]


def test_a_date_in_a_filter_that_does_not_exist_is_refused_naming_the_attribute(client: TestClient) -> None:
    message = assert_tmf_error(client.get(f"{ORDERS}?orderDate.gt=2026-13-45"), 400, "INVALID_QUERY")

    assert message.startswith("orderDate.gt")


def test_an_unknown_state_in_a_filter_is_refused_naming_the_states(
    client: TestClient, orders: Orders
) -> None:
    message = assert_tmf_error(client.get(f"{ORDERS}?state=started"), 400, "INVALID_QUERY")

    assert "started" in message
    assert "inProgress" in message


def test_a_filter_that_matches_nothing_is_an_empty_list(client: TestClient, orders: Orders) -> None:
    response = client.get(f"{ORDERS}?externalId=BSS-9999")

    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["x-total-count"] == "0"
    assert response.headers["x-result-count"] == "0"


# --- sorting --------------------------------------------------------------------------------------


def test_orders_are_sorted_ascending_by_default_direction(client: TestClient, orders: Orders) -> None:
    assert listed(client, orders, "sort=orderDate") == ["ftth", "eline", "sim", "iptv"]


def test_a_minus_sorts_descending(client: TestClient, orders: Orders) -> None:
    assert listed(client, orders, "sort=-orderDate") == ["iptv", "sim", "eline", "ftth"]


def test_the_newest_orders_come_first_without_a_sort(client: TestClient, orders: Orders) -> None:
    assert listed(client, orders, "") == ["iptv", "sim", "eline", "ftth"]


def test_later_sort_keys_break_ties(client: TestClient, orders: Orders) -> None:
    assert listed(client, orders, "sort=priority,-orderDate") == ["ftth", "iptv", "sim", "eline"]
    assert listed(client, orders, "sort=-category,orderDate") == ["ftth", "iptv", "sim", "eline"]


def test_orders_are_sorted_on_an_attribute_kept_only_in_the_document(
    client: TestClient, orders: Orders
) -> None:
    # Ascending: the opposite of the default newest-first order of these two.
    assert listed(client, orders, "sort=description&category=residential") == ["ftth", "iptv"]


# --- paging ---------------------------------------------------------------------------------------


def test_a_page_that_holds_every_match_is_200_with_both_counts(client: TestClient, orders: Orders) -> None:
    response = client.get(f"{ORDERS}?limit=4")

    assert response.status_code == 200
    assert response.headers["x-total-count"] == "4"
    assert response.headers["x-result-count"] == "4"


def test_a_partial_page_is_206_and_counts_what_it_holds_and_what_matches(
    client: TestClient, orders: Orders
) -> None:
    response = client.get(f"{ORDERS}?sort=orderDate&limit=3")

    assert response.status_code == 206
    assert response.headers["x-total-count"] == "4"
    assert response.headers["x-result-count"] == "3"
    assert names(response, orders) == ["ftth", "eline", "sim"]


def test_offset_skips_orders_and_the_last_page_is_still_partial(client: TestClient, orders: Orders) -> None:
    response = client.get(f"{ORDERS}?sort=orderDate&offset=2&limit=3")

    assert response.status_code == 206
    assert response.headers["x-total-count"] == "4"
    assert response.headers["x-result-count"] == "2"
    assert names(response, orders) == ["sim", "iptv"]


def test_the_total_counts_the_filtered_orders_only(client: TestClient, orders: Orders) -> None:
    response = client.get(f"{ORDERS}?category=residential&limit=1&sort=orderDate")

    assert response.status_code == 206
    assert response.headers["x-total-count"] == "2"
    assert names(response, orders) == ["ftth"]


def test_an_offset_past_the_end_is_an_empty_partial_page(client: TestClient, orders: Orders) -> None:
    response = client.get(f"{ORDERS}?offset=10")

    assert response.status_code == 206
    assert response.json() == []
    assert response.headers["x-total-count"] == "4"
    assert response.headers["x-result-count"] == "0"


def test_a_limit_at_the_maximum_is_accepted(client: TestClient, orders: Orders) -> None:
    assert client.get(f"{ORDERS}?limit=1000").status_code == 200


def test_a_limit_over_the_maximum_is_refused_naming_the_maximum(client: TestClient) -> None:
    message = assert_tmf_error(client.get(f"{ORDERS}?limit=1001"), 400, "INVALID_QUERY")

    assert "limit" in message
    assert "1000" in message


@pytest.mark.parametrize("query", ["limit=0", "limit=-5", "limit=ten", "offset=-1"])
def test_a_meaningless_page_is_refused_naming_the_parameter(client: TestClient, query: str) -> None:
    message = assert_tmf_error(client.get(f"{ORDERS}?{query}"), 400, "INVALID_QUERY")

    assert message.startswith(query.split("=", maxsplit=1)[0])
