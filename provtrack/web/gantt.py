"""The plan as a Gantt chart, drawn on the server as SVG: a row per activity, its planned bar and its
actual bar, the critical path highlighted, the dependencies as arrows and a line at "now".

`gantt(plan, now)` computes the geometry (plain numbers, tested without a browser); the template
draws it. Coordinates are in a fixed viewBox, so the chart scales with the page and never moves the
layout when it is redrawn.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from provtrack.domain.activities import Activity
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.durations import humane_duration
from provtrack.domain.plan import Plan, schedule

WIDTH = 1000
LABEL_WIDTH = 220
RIGHT_MARGIN = 20
ROW_HEIGHT = 30
TOP = 28  # room for the time axis
OPEN_STATES = frozenset({"inProgress", "blocked", "fallout"})
TICK_STEPS = [
    timedelta(seconds=s)
    for s in (
        1,
        5,
        15,
        30,
        60,
        300,
        900,
        1800,
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86400,
        2 * 86400,
        7 * 86400,
    )
]


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    name: str
    label: str
    state: str
    y: float
    critical: bool
    planned: Bar | None
    actual: Bar | None
    title: str


@dataclass(frozen=True, slots=True)
class Arrow:
    path: str
    critical: bool


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Gantt:
    width: int
    height: float
    label_width: int
    rows: list[Row]
    arrows: list[Arrow]
    ticks: list[Tick]
    now_x: float | None
    now_label: str
    critical_path: list[str] = field(default_factory=list)


def gantt(plan: dict[str, Any], now: datetime) -> Gantt | None:
    """The chart of a plan document (GET .../plan), or None when it has no activities."""
    if not plan.get("activity"):
        return None
    plan = projected(plan, now)
    activities = plan["activity"]
    critical = set(plan.get("criticalPath") or [])
    spans = {a["id"]: _spans(a, now) for a in activities}
    instants = [t for planned, actual in spans.values() for bar in (planned, actual) if bar for t in bar]
    instants.append(now)
    start, end = min(instants), max(instants)
    span = max(end - start, timedelta(minutes=1))
    start -= span * 0.03
    end += span * 0.06
    chart_width = WIDTH - LABEL_WIDTH - RIGHT_MARGIN
    scale = chart_width / (end - start).total_seconds()

    def x_of(t: datetime) -> float:
        return round(LABEL_WIDTH + (t - start).total_seconds() * scale, 1)

    def bar(times: tuple[datetime, datetime] | None) -> Bar | None:
        if times is None:
            return None
        x = x_of(times[0])
        return Bar(x, max(round(x_of(times[1]) - x, 1), 2.0))

    rows: list[Row] = []
    for index, a in enumerate(activities):
        planned, actual = spans[a["id"]]
        rows.append(
            Row(
                a["id"],
                a["name"],
                f"{a['name']} ({a['serviceOrderItemId']})",
                a["state"],
                TOP + index * ROW_HEIGHT,
                a["id"] in critical,
                bar(planned),
                bar(actual),
                _title(a, planned, actual),
            )
        )
    height = TOP + len(rows) * ROW_HEIGHT + 8
    return Gantt(
        WIDTH,
        height,
        LABEL_WIDTH,
        rows,
        _arrows(plan, rows),
        _ticks(start, end, x_of),
        x_of(now),
        format_datetime(now)[11:16],
        list(plan.get("criticalPath") or []),
    )


def _arrows(plan: dict[str, Any], rows: list[Row]) -> list[Arrow]:
    """An arrow from each predecessor's row to its successor's, critical when both ends are and
    one follows the other on the critical path."""
    by_id = {r.id: r for r in rows}
    arrows = []
    for a in plan["activity"]:
        target = by_id[a["id"]]
        for predecessor in a.get("predecessors") or []:
            source = by_id.get(predecessor)
            if source is None:
                continue
            critical = source.critical and target.critical and _adjacent(plan, predecessor, a["id"])
            arrows.append(Arrow(_elbow(source, target), critical))
    return arrows


def projected(plan: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The plan as it stands now: the stored planned dates are those of its last change, so the
    waiting activities are projected again from now, by the domain's own forward pass (the one the
    expected completion date comes from), and the critical path with them."""
    activities = [Activity.from_document(a) for a in plan["activity"]]
    fresh = Plan.from_document(plan, activities)
    if fresh.started:
        _, fresh.critical_path = schedule(fresh, now=now)
    return {**plan, "criticalPath": fresh.critical_path, "activity": [a.to_document() for a in activities]}


def _spans(
    activity: dict[str, Any], now: datetime
) -> tuple[tuple[datetime, datetime] | None, tuple[datetime, datetime] | None]:
    """(planned, actual) as instants. Planned is what was expected of the run: from its actual start
    for its expected duration once it has started (so an overrun shows), else the projection of the
    plan. Actual runs up to now while the activity is open."""
    expected = timedelta(seconds=float(activity.get("expectedDurationSeconds") or 0))
    actual = None
    if activity.get("actualStartDate"):
        begin = parse_datetime(activity["actualStartDate"])
        end_text = activity.get("actualEndDate")
        end = parse_datetime(end_text) if end_text else now
        actual = (begin, max(end, begin))
        return (begin, begin + expected), actual
    if activity.get("plannedStartDate"):
        begin = parse_datetime(activity["plannedStartDate"])
        end_text = activity.get("plannedEndDate")
        end = parse_datetime(end_text) if end_text else begin + expected
        return (begin, max(end, begin + expected)), None
    return None, None


def _title(
    a: dict[str, Any],
    planned: tuple[datetime, datetime] | None,
    actual: tuple[datetime, datetime] | None,
) -> str:
    parts = [f"{a['name']} — {a['state']} ({a['owner']})"]
    expected = timedelta(seconds=float(a.get("expectedDurationSeconds") or 0))
    parts.append(f"expected {humane_duration(expected)}")
    if planned:
        parts.append(f"planned {format_datetime(planned[0])[:16]} → {format_datetime(planned[1])[:16]}")
    if actual:
        took = actual[1] - actual[0]
        parts.append(f"actual {humane_duration(took)}" + (" so far" if a["state"] in OPEN_STATES else ""))
    return "; ".join(parts)


def _elbow(source: Row, target: Row) -> str:
    """From the end of the predecessor's bar to the start of the successor's, with one bend."""
    source_bar = source.actual or source.planned
    target_bar = target.planned or target.actual
    if source_bar is None or target_bar is None:
        return ""
    x1, y1 = source_bar.x + source_bar.width, source.y + ROW_HEIGHT / 2
    x2, y2 = target_bar.x, target.y + ROW_HEIGHT / 2
    bend = max(x1 + 6, min(x2 - 6, x1 + 14)) if x2 > x1 + 12 else x1 + 8
    return f"M{x1:.1f},{y1:.1f} H{bend:.1f} V{y2:.1f} H{max(x2 - 1, bend):.1f}"


def _adjacent(plan: dict[str, Any], first: str, second: str) -> bool:
    path = list(plan.get("criticalPath") or [])
    return any(a == first and b == second for a, b in itertools.pairwise(path))


def _ticks(start: datetime, end: datetime, x_of: Any) -> list[Tick]:
    span = end - start
    step = next((s for s in TICK_STEPS if span / s <= 8), TICK_STEPS[-1])
    first = datetime.fromtimestamp(
        (start.timestamp() // step.total_seconds() + 1) * step.total_seconds(), start.tzinfo
    )
    ticks = []
    t = first
    daily = step >= timedelta(days=1)
    while t < end:
        text = format_datetime(t)
        ticks.append(
            Tick(
                x_of(t), text[5:10] if daily else text[11:16] if step >= timedelta(minutes=1) else text[11:19]
            )
        )
        t += step
    return ticks
