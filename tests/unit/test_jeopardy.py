"""Jeopardy levels, projections and the exact instant the level next changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from provtrack.domain.jeopardy import (
    TICK,
    ActivityTiming,
    JeopardyLevel,
    Thresholds,
    assess,
    learned_duration,
)

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def ftth_plan(*, reserve_started: datetime | None = T0) -> list[ActivityTiming]:
    """Reserve port (1 h, running) -> install ONT (4 h) -> activate line (30 min)."""
    return [
        ActivityTiming("a1", "reserve OLT port", H, started_at=reserve_started),
        ActivityTiming("a2", "install ONT", 4 * H, predecessors=("a1",)),
        ActivityTiming("a3", "activate line", H / 2, predecessors=("a2",)),
    ]


def test_an_order_with_room_to_spare_is_on_track_and_projects_its_critical_path() -> None:
    result = assess(ftth_plan(), now=T0, commitment=T0 + 8 * H)
    assert result.level is JeopardyLevel.ON_TRACK
    assert result.projection == T0 + 5.5 * H


def test_an_activity_overrun_raises_at_risk_at_the_exact_threshold_instant() -> None:
    commitment = T0 + 24 * H
    first = assess(ftth_plan(), now=T0, commitment=commitment)
    assert first.next_change == T0 + 1.25 * H  # 1 h expected, 25% threshold

    just_before = assess(ftth_plan(), now=first.next_change - TICK, commitment=commitment)
    at_threshold = assess(ftth_plan(), now=first.next_change, commitment=commitment)
    assert just_before.level is JeopardyLevel.ON_TRACK
    assert at_threshold.level is JeopardyLevel.AT_RISK
    assert "reserve OLT port" in at_threshold.reason


def test_a_projection_past_the_commitment_raises_in_jeopardy_before_the_due_date() -> None:
    commitment = T0 + 6 * H  # 5.5 h of plan: 30 min of slack
    timeline = assess(ftth_plan(), now=T0, commitment=commitment, thresholds=Thresholds(overrun=10))
    # The running activity can overrun 30 min before the plan no longer fits.
    assert timeline.next_change == T0 + 1.5 * H + TICK
    later = assess(
        ftth_plan(), now=timeline.next_change, commitment=commitment, thresholds=Thresholds(overrun=10)
    )
    assert later.level is JeopardyLevel.IN_JEOPARDY
    assert later.projection > commitment
    assert later.next_change == commitment
    assert "after the commitment" in later.reason


def test_late_when_the_commitment_passes() -> None:
    result = assess(ftth_plan(), now=T0 + 6 * H, commitment=T0 + 6 * H)
    assert result.level is JeopardyLevel.LATE
    assert result.next_change is None


def test_slack_under_the_margin_is_at_risk() -> None:
    result = assess(ftth_plan(), now=T0, commitment=T0 + 6 * H, thresholds=Thresholds(margin=H))
    assert result.level is JeopardyLevel.AT_RISK
    assert "slack" in result.reason


def test_learned_durations_replace_the_catalog_duration_after_enough_history() -> None:
    catalog = timedelta(minutes=30)
    few = [timedelta(minutes=m) for m in (50, 55)]
    many = [timedelta(minutes=m) for m in range(40, 60)]
    assert learned_duration(few, percentile=90, min_samples=10, fallback=catalog) == catalog
    assert learned_duration(many, percentile=90, min_samples=10, fallback=catalog) == timedelta(minutes=57)


durations = st.integers(min_value=1, max_value=600).map(lambda m: timedelta(minutes=m))


@st.composite
def plans(draw: st.DrawFn) -> list[ActivityTiming]:
    count = draw(st.integers(min_value=1, max_value=6))
    activities = []
    for index in range(count):
        predecessors = tuple(f"a{p}" for p in range(index) if draw(st.booleans()))
        started = None
        if not predecessors and draw(st.booleans()):
            started = T0 - draw(durations)
        activities.append(
            ActivityTiming(f"a{index}", f"step {index}", draw(durations), predecessors, started)
        )
    return activities


@settings(max_examples=200, deadline=None)
@given(
    plan=plans(),
    commitment_in=st.integers(min_value=-60, max_value=3000).map(lambda m: timedelta(minutes=m)),
    probe=st.floats(min_value=0, max_value=1),
    margin=st.integers(min_value=0, max_value=120).map(lambda m: timedelta(minutes=m)),
)
def test_the_level_holds_until_the_announced_instant_and_climbs_there(
    plan: list[ActivityTiming], commitment_in: timedelta, probe: float, margin: timedelta
) -> None:
    thresholds = Thresholds(margin=margin)
    commitment = T0 + commitment_in
    now = assess(plan, now=T0, commitment=commitment, thresholds=thresholds)
    if now.next_change is None:
        assert now.level is JeopardyLevel.LATE
        return
    assert now.next_change > T0
    between = T0 + (now.next_change - T0 - TICK) * probe
    assert assess(plan, now=between, commitment=commitment, thresholds=thresholds).level is now.level
    then = assess(plan, now=now.next_change, commitment=commitment, thresholds=thresholds)
    assert then.level.rank > now.level.rank


def test_an_alert_gives_durations_at_their_own_precision() -> None:
    plan = [ActivityTiming("a1", "reserve OLT port", timedelta(seconds=2), started_at=T0)]
    overrun = assess(plan, now=T0 + timedelta(seconds=4), commitment=T0 + 24 * H)
    late = assess(plan, now=T0 + timedelta(minutes=1, seconds=30), commitment=T0 + timedelta(seconds=45))
    slack = assess(
        ftth_plan(),
        now=T0,
        commitment=T0 + 7 * H + timedelta(minutes=35),
        thresholds=Thresholds(margin=4 * H),
    )

    assert overrun.level is JeopardyLevel.AT_RISK
    assert "activity reserve OLT port has run 4s, expected 2s;" in overrun.reason
    assert "has passed (45s ago)" in late.reason
    assert "only 2h 05min of slack left (margin 4h)" in slack.reason
