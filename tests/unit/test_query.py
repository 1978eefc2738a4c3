"""TMF630 query strings: filters, operators, paging, sorting and field selection."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from provtrack.domain.query import (
    Condition,
    InvalidQuery,
    Query,
    SortKey,
    Value,
    parse_fields,
    parse_query,
    select_fields,
)

STATES = ("acknowledged", "inProgress", "completed")


def parse(raw: str, **options: Any) -> Query:
    return parse_query(raw, default_limit=100, max_limit=1000, **options)


def only_condition(raw: str) -> Condition:
    (condition,) = parse(raw).conditions
    return condition


def text(*values: str) -> tuple[Value, ...]:
    return tuple(Value("text", v) for v in values)


def refusal(raw: str, **options: Any) -> InvalidQuery:
    with pytest.raises(InvalidQuery) as caught:
        parse(raw, **options)
    return caught.value


# --- filters -----------------------------------------------------------------------------------


def test_an_empty_query_asks_for_the_first_page_of_everything() -> None:
    assert parse("") == Query(conditions=(), sort=(), offset=0, limit=100, fields=None)


def test_an_attribute_equals_a_value() -> None:
    assert only_condition("state=acknowledged") == Condition(("state",), "eq", text("acknowledged"))


def test_commas_give_alternatives() -> None:
    assert only_condition("state=acknowledged,inProgress").values == text("acknowledged", "inProgress")


@pytest.mark.parametrize(
    "raw", ["state=acknowledged&state=inProgress", "state=acknowledged;state=inProgress"]
)
def test_a_repeated_attribute_gives_alternatives(raw: str) -> None:
    assert only_condition(raw) == Condition(("state",), "eq", text("acknowledged", "inProgress"))


def test_different_attributes_are_all_required() -> None:
    query = parse("state=completed&category=business")
    assert {c.path for c in query.conditions} == {("state",), ("category",)}


def test_a_dotted_attribute_filters_on_a_nested_value() -> None:
    condition = only_condition("serviceOrderItem.service.id=svc-1")
    assert condition.path == ("serviceOrderItem", "service", "id")
    assert condition.values == text("svc-1")


def test_an_at_attribute_can_be_filtered_on() -> None:
    assert only_condition("@type=ServiceOrder").path == ("@type",)


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte", "eq", "ne"])
def test_an_operator_suffix_sets_the_comparison(op: str) -> None:
    condition = only_condition(f"orderDate.{op}=2026-11-27")
    assert (condition.path, condition.op) == (("orderDate",), op)
    assert condition.values == (Value("datetime", "2026-11-27T00:00:00.000Z"),)


@pytest.mark.parametrize(
    ("raw", "op"),
    [
        ("orderDate>=2026-11-27", "gte"),
        ("orderDate<=2026-11-27", "lte"),
        ("orderDate>2026-11-27", "gt"),
        ("orderDate<2026-11-27", "lt"),
        ("orderDate!=2026-11-27", "ne"),
        ("orderDate%3E%3D2026-11-27", "gte"),
        ("orderDate%3C%3D2026-11-27", "lte"),
        ("orderDate%3E2026-11-27", "gt"),
        ("orderDate%3c2026-11-27", "lt"),
    ],
)
def test_the_symbol_forms_of_the_operators_plain_or_percent_encoded(raw: str, op: str) -> None:
    condition = only_condition(raw)
    assert (condition.path, condition.op) == (("orderDate",), op)
    assert condition.values == (Value("datetime", "2026-11-27T00:00:00.000Z"),)


def test_an_operator_given_twice_is_refused() -> None:
    refused = refusal("orderDate.gt>2026-11-27")
    assert refused.parameter == "orderDate.gt"
    assert "give the operator once" in str(refused)


def test_the_ranges_on_one_attribute_are_kept_apart() -> None:
    query = parse("orderDate.gte=2026-11-01&orderDate.lt=2026-12-01")
    assert [(c.op, c.values[0].text) for c in query.conditions] == [
        ("gte", "2026-11-01T00:00:00.000Z"),
        ("lt", "2026-12-01T00:00:00.000Z"),
    ]


def test_a_quoted_value_keeps_its_commas() -> None:
    assert only_condition("description=\"FTTH, 1G\",'IPTV, HD',plain").values == text(
        "FTTH, 1G", "IPTV, HD", "plain"
    )


def test_a_percent_encoded_quoted_value_keeps_its_commas() -> None:
    assert only_condition("description=%22a%2Cb%22").values == text("a,b")


def test_a_quoted_value_after_an_operator_loses_its_quotes() -> None:
    assert only_condition('externalId.gt="BSS-0001"').values == text("BSS-0001")


def test_an_equals_sign_inside_a_value_belongs_to_the_value() -> None:
    assert only_condition("description=a=b").values == text("a=b")


def test_a_percent_encoded_ampersand_stays_inside_the_value() -> None:
    assert only_condition("description=fish%26chips").values == text("fish&chips")


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("2026-11-27", "2026-11-27T00:00:00.000Z"),
        ("2026-11-27T09:30", "2026-11-27T09:30:00.000Z"),
        ("2026-11-27T09:30:15Z", "2026-11-27T09:30:15.000Z"),
        ("2026-11-27T09:30:15.5Z", "2026-11-27T09:30:15.500Z"),
        ("2026-11-27T11:30:15%2B02:00", "2026-11-27T09:30:15.000Z"),
        ("2026-11-27T04:30:15-0500", "2026-11-27T09:30:15.000Z"),
        ("2026-11-27%2009:30:15", "2026-11-27T09:30:15.000Z"),
    ],
)
def test_dates_are_normalised_to_the_stored_form(given: str, canonical: str) -> None:
    assert only_condition(f"orderDate.gte={given}").values == (Value("datetime", canonical),)


def test_an_impossible_date_is_refused_naming_the_parameter() -> None:
    refused = refusal("orderDate.gt=2026-13-45")
    assert refused.parameter == "orderDate.gt"
    assert "is not an ISO 8601 date-time" in str(refused)


@pytest.mark.parametrize(("given", "number"), [("3", 3.0), ("-2", -2.0), ("1.25", 1.25)])
def test_numbers_are_typed_as_numbers(given: str, number: float) -> None:
    (value,) = only_condition(f"quantity.gt={given}").values
    assert value.kind == "number"
    assert value.number == number


def test_words_stay_text() -> None:
    (value,) = only_condition("priority=high").values
    assert value.kind == "text"


def test_a_value_outside_its_enumeration_is_refused_listing_the_values() -> None:
    refused = refusal("state=acknowledged,done", enums={("state",): STATES})
    assert refused.parameter == "state"
    assert "'done' is not one of acknowledged, inProgress, completed" in str(refused)


def test_values_inside_their_enumeration_are_accepted() -> None:
    assert parse("state=completed", enums={("state",): STATES}).conditions


@pytest.mark.parametrize("raw", ["state", "=acknowledged", "sta te=x", "state.=x", "1state=x"])
def test_a_parameter_that_is_not_a_filter_is_refused(raw: str) -> None:
    refusal(raw)


# --- paging and sorting ------------------------------------------------------------------------


def test_offset_and_limit_set_the_page() -> None:
    query = parse("offset=20&limit=10")
    assert (query.offset, query.limit) == (20, 10)


def test_the_limit_may_be_the_maximum() -> None:
    assert parse("limit=1000").limit == 1000


def test_a_limit_over_the_maximum_is_refused_naming_the_maximum() -> None:
    refused = refusal("limit=1001")
    assert refused.parameter == "limit"
    assert str(refused) == "limit: 1001 is over the maximum of 1000"


def test_the_maximum_is_the_one_configured() -> None:
    with pytest.raises(InvalidQuery, match="maximum of 50"):
        parse_query("limit=51", default_limit=20, max_limit=50)
    assert parse_query("", default_limit=20, max_limit=50).limit == 20


@pytest.mark.parametrize(
    ("raw", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("offset=first", "offset"),
        ("offset=1.5", "offset"),
        ("limit>5", "limit"),
    ],
)
def test_a_bad_offset_or_limit_is_refused_by_name(raw: str, parameter: str) -> None:
    assert refusal(raw).parameter == parameter


def test_sort_keys_are_ascending_unless_prefixed_with_a_minus() -> None:
    assert parse("sort=-orderDate,%2Bstate,serviceOrderItem.id").sort == (
        SortKey(("orderDate",), descending=True),
        SortKey(("state",), descending=False),
        SortKey(("serviceOrderItem", "id"), descending=False),
    )


def test_a_sort_key_that_is_not_an_attribute_is_refused() -> None:
    assert refusal("sort=order%20date").parameter == "sort"
    assert refusal("sort=state,-").parameter == "sort"


def test_paging_parameters_are_not_filters() -> None:
    query = parse("offset=0&limit=5&sort=state&fields=state")
    assert query.conditions == ()
    assert query.fields == {"state": None}


# --- field selection ---------------------------------------------------------------------------

ORDER: dict[str, Any] = {
    "id": "so-1",
    "href": "http://h/serviceOrder/so-1",
    "state": "inProgress",
    "orderDate": "2026-11-27T09:00:00.000Z",
    "relatedParty": [{"id": "cust-42", "role": "customer"}],
    "serviceOrderItem": [
        {"id": "1", "state": "completed", "service": {"id": "svc-1", "name": "ftth"}},
        {"id": "2", "state": "inProgress", "service": {"name": "iptv"}, "serviceOrderItem": [{"id": "2.1"}]},
    ],
}


def test_fields_parse_into_a_tree() -> None:
    assert parse_fields("state, serviceOrderItem.id,serviceOrderItem.service.id") == {
        "state": None,
        "serviceOrderItem": {"id": None, "service": {"id": None}},
    }


@pytest.mark.parametrize(
    "value", ["serviceOrderItem,serviceOrderItem.id", "serviceOrderItem.id,serviceOrderItem"]
)
def test_a_whole_attribute_wins_over_a_part_of_it(value: str) -> None:
    assert parse_fields(value) == {"serviceOrderItem": None}


def test_a_field_that_is_not_an_attribute_is_refused() -> None:
    assert refusal("fields=state,order-date").parameter == "fields"


def test_first_level_fields_keep_id_and_href() -> None:
    assert select_fields(ORDER, parse_fields("state,orderDate")) == {
        "id": "so-1",
        "href": "http://h/serviceOrder/so-1",
        "state": "inProgress",
        "orderDate": "2026-11-27T09:00:00.000Z",
    }


def test_dotted_fields_reach_into_every_element_of_an_array() -> None:
    selected = select_fields(ORDER, parse_fields("serviceOrderItem.id,serviceOrderItem.service.name"))
    assert selected["serviceOrderItem"] == [
        {"id": "1", "service": {"name": "ftth"}},
        {"id": "2", "service": {"name": "iptv"}},
    ]
    assert set(selected) == {"id", "href", "serviceOrderItem"}


def test_a_whole_attribute_is_kept_as_it_is() -> None:
    assert (
        select_fields(ORDER, parse_fields("serviceOrderItem"))["serviceOrderItem"]
        == ORDER["serviceOrderItem"]
    )


def test_fields_none_keeps_only_id_and_href() -> None:
    assert select_fields(ORDER, parse_fields("none")) == {"id": "so-1", "href": "http://h/serviceOrder/so-1"}


def test_an_absent_field_is_left_out() -> None:
    assert select_fields(ORDER, parse_fields("completionDate,serviceOrderItem.appointment")) == {
        "id": "so-1",
        "href": "http://h/serviceOrder/so-1",
        "serviceOrderItem": [{}, {}],
    }


def test_selecting_fields_leaves_the_document_alone() -> None:
    untouched = copy.deepcopy(ORDER)
    select_fields(ORDER, parse_fields("serviceOrderItem.id"))
    assert untouched == ORDER


def test_an_unencoded_plus_in_a_date_filter_is_read_as_a_time_zone_offset() -> None:
    from provtrack.domain.query import parse_query

    query = parse_query("orderDate.gt=2026-11-01T10:00:00+02:00", default_limit=100, max_limit=1000)
    [condition] = query.conditions
    assert condition.values[0].kind == "datetime"
    assert condition.values[0].text == "2026-11-01T08:00:00.000Z"
