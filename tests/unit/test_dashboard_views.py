"""The dashboard's pure parts: the Gantt geometry and the order list's form as TMF630 filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.datastructures import QueryParams

from provtrack.web.filters import InvalidFilter, OrderFilter
from provtrack.web.gantt import LABEL_WIDTH, gantt

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def activity(name: str, state: str, predecessors: tuple[str, ...] = (), **dates: str) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "serviceOrderId": "order-1",
        "kind": "resourceOrder",
        "serviceOrderItemId": "1",
        "owner": "inventory",
        "state": state,
        "predecessors": list(predecessors),
        "expectedDurationSeconds": 1800,
        **dates,
    }


def test_a_running_activity_is_drawn_up_to_now_and_what_waits_is_projected_from_now() -> None:
    plan = {
        "serviceOrderId": "order-1",
        "createdAt": "2026-11-27T08:00:00Z",
        "started": True,
        "criticalPath": ["a", "b"],  # as stored at the last change, before b overran
        "activity": [
            activity(
                "a", "done", actualStartDate="2026-11-27T08:00:00Z", actualEndDate="2026-11-27T08:30:00Z"
            ),
            activity("b", "inProgress", ("a",), actualStartDate="2026-11-27T08:30:00Z"),
            activity(
                "c",
                "planned",
                ("a",),
                plannedStartDate="2026-11-27T08:30:00Z",
                plannedEndDate="2026-11-27T09:00:00Z",
            ),
        ],
    }

    chart = gantt(plan, NOW)

    assert chart is not None
    a, b, c = chart.rows
    assert b.actual is not None
    assert b.planned is not None
    # b has run 1 h 30 min against 30 min expected: its actual bar is three times its planned bar.
    assert b.actual.width == pytest.approx(3 * b.planned.width, abs=0.2)
    assert chart.now_x == pytest.approx(b.actual.x + b.actual.width, abs=0.2)
    # c could not start before now: projected from now for its 30 minutes, it ends last.
    assert c.actual is None
    assert c.planned is not None
    assert c.planned.x == pytest.approx(chart.now_x, abs=0.2)
    assert [r.critical for r in chart.rows] == [True, False, True]
    assert [arrow.critical for arrow in chart.arrows] == [False, True]
    assert a.planned is not None
    assert a.planned.x >= LABEL_WIDTH


def test_a_plan_without_activities_has_no_chart() -> None:
    assert gantt({"activity": []}, NOW) is None


def test_the_form_becomes_tmf630_filters_and_the_url_keeps_it() -> None:
    chosen = OrderFilter.from_params(
        QueryParams(
            "state=held&state=pending&jeopardyLevel=late&category=business&orderedFrom=2026-11-01"
            "&orderedTo=2026-11-30&externalId=BSS-1,2&sort=priority&page=3&size=50"
        )
    )

    assert chosen.conditions() == [
        "state=held,pending",
        "jeopardyLevel=late",
        "category=business",
        "externalId=%22BSS-1%2C2%22",
        "orderDate.gte=2026-11-01T00:00:00Z",
        "orderDate.lt=2026-12-01T00:00:00Z",
    ]
    query = chosen.query(max_limit=1000)
    assert (query.offset, query.limit) == (100, 50)
    assert OrderFilter.from_params(QueryParams(chosen.params())) == chosen


def test_a_date_that_is_not_one_is_refused_with_its_field() -> None:
    with pytest.raises(InvalidFilter, match="orderedFrom"):
        OrderFilter.from_params(QueryParams("orderedFrom=yesterday"))
