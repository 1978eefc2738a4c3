"""Jeopardy: where an open order stands against its commitment, and when that can next change.

The projection is now + the remaining critical path of the plan. A running activity is expected to
take the rest of its expected duration; once it overruns, it is taken to finish "any moment now", so
from then on every path through it moves the projection forward with the clock. With nothing else
happening, the projection can only grow, so the level can only climb: `assess` returns the exact
instant it would next climb, and the engine schedules one timer for that instant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from provtrack.domain.durations import humane_duration

TICK = timedelta(milliseconds=1)  # the resolution of stored date-times


class JeopardyLevel(StrEnum):
    """How an open order stands against its commitment (the TMF641 jeopardyAlert `jeopardyType`)."""

    ON_TRACK = "onTrack"  # projected to finish in time with the policy's margin
    AT_RISK = "atRisk"  # an activity overran by the threshold, or the slack is under the margin
    IN_JEOPARDY = "inJeopardy"  # projected to finish after the commitment
    LATE = "late"  # the commitment has passed

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    JeopardyLevel.ON_TRACK: 0,
    JeopardyLevel.AT_RISK: 1,
    JeopardyLevel.IN_JEOPARDY: 2,
    JeopardyLevel.LATE: 3,
}


@dataclass(frozen=True, slots=True)
class ActivityTiming:
    """What jeopardy needs of one unfinished activity of the plan."""

    id: str
    name: str
    expected: timedelta
    predecessors: tuple[str, ...] = ()
    started_at: datetime | None = None  # None: waiting for its predecessors or its start date


@dataclass(frozen=True, slots=True)
class Thresholds:
    overrun: float = 0.25  # atRisk once an activity has taken 25% longer than expected
    margin: timedelta = timedelta(0)  # atRisk when the slack falls under this


@dataclass(frozen=True, slots=True)
class Assessment:
    level: JeopardyLevel
    projection: datetime
    commitment: datetime
    reason: str  # for a person: which activity, how late, projected and committed dates
    next_change: datetime | None  # when the level would next climb if nothing else happened


@dataclass(frozen=True, slots=True)
class _Path:
    """One way through the unfinished plan: its head runs now (or waits), `rest` follows it."""

    head: ActivityTiming
    head_remaining: timedelta  # of the head's expected duration, at `now`
    rest: timedelta  # expected durations after the head, along the longest continuation

    def projection(self, now: datetime, at: datetime) -> datetime:
        """Projected completion along this path, seen at `at` >= now if nothing else happens."""
        if self.head.started_at is None:
            return at + self.head_remaining + self.rest  # waiting: it all still lies ahead
        return max(now + self.head_remaining, at) + self.rest  # overrun: finishing "any moment"

    def crossing(self, now: datetime, limit: datetime) -> datetime:
        """First instant >= now at which this path projects after `limit`."""
        if self.projection(now, now) > limit:
            return now
        # "After" is strict: the projection passes the limit one tick after reaching it.
        if self.head.started_at is None:
            return limit - self.head_remaining - self.rest + TICK
        return limit - self.rest + TICK


def assess(
    activities: Sequence[ActivityTiming],
    *,
    now: datetime,
    commitment: datetime,
    thresholds: Thresholds = Thresholds(),
) -> Assessment:
    paths = _paths(activities, now)
    projection = max((p.projection(now, now) for p in paths), default=now)
    overruns = [a for a in activities if a.started_at is not None and now >= _overrun_at(a, thresholds)]
    if now >= commitment:
        level = JeopardyLevel.LATE
        reason = f"the commitment {_fmt(commitment)} has passed ({humane_duration(now - commitment)} ago)"
    elif projection > commitment:
        level = JeopardyLevel.IN_JEOPARDY
        reason = (
            f"projected to complete {_fmt(projection)}, {humane_duration(projection - commitment)} after the "
            f"commitment {_fmt(commitment)}{_critical(paths, now)}"
        )
    elif overruns:
        worst = max(overruns, key=lambda a: now - _started(a) - a.expected)
        reason = (
            f"activity {worst.name} has run {humane_duration(now - _started(worst))}, expected "
            f"{humane_duration(worst.expected)}; projected {_fmt(projection)}, committed {_fmt(commitment)}"
        )
        level = JeopardyLevel.AT_RISK
    elif commitment - projection < thresholds.margin:
        level = JeopardyLevel.AT_RISK
        reason = (
            f"only {humane_duration(commitment - projection)} of slack left "
            f"(margin {humane_duration(thresholds.margin)}): "
            f"projected {_fmt(projection)}, committed {_fmt(commitment)}"
        )
    else:
        level = JeopardyLevel.ON_TRACK
        reason = f"projected {_fmt(projection)}, committed {_fmt(commitment)}"
    return Assessment(
        level,
        projection,
        commitment,
        reason,
        _next_change(
            level=level,
            activities=activities,
            paths=paths,
            now=now,
            commitment=commitment,
            thresholds=thresholds,
        ),
    )


def _next_change(
    *,
    level: JeopardyLevel,
    activities: Sequence[ActivityTiming],
    paths: Sequence[_Path],
    now: datetime,
    commitment: datetime,
    thresholds: Thresholds,
) -> datetime | None:
    if level == JeopardyLevel.LATE:
        return None
    candidates = [commitment]
    if level.rank < JeopardyLevel.IN_JEOPARDY.rank:
        candidates.extend(_strictly_after(p.crossing(now, commitment), now) for p in paths)
    if level.rank < JeopardyLevel.AT_RISK.rank:
        candidates.extend(
            _strictly_after(p.crossing(now, commitment - thresholds.margin), now) for p in paths
        )
        candidates.extend(_overrun_at(a, thresholds) for a in activities if a.started_at is not None)
    upcoming = [c for c in candidates if c > now]
    return min(upcoming) if upcoming else None


def _strictly_after(instant: datetime, now: datetime) -> datetime:
    # A crossing "now" would already show in the level; the next one is at least a millisecond away.
    return instant if instant > now else now + TICK


def _paths(activities: Sequence[ActivityTiming], now: datetime) -> list[_Path]:
    """The longest continuation from each activity that can move first (running or unblocked)."""
    by_id = {a.id: a for a in activities}
    successors: dict[str, list[str]] = {a.id: [] for a in activities}
    for a in activities:
        for p in a.predecessors:
            if p in successors:
                successors[p].append(a.id)
    tail: dict[str, timedelta] = {}

    def longest_after(activity_id: str) -> timedelta:
        # Longest expected duration of what follows activity_id (memoised; the plan is acyclic).
        if activity_id not in tail:
            tail[activity_id] = max(
                (by_id[s].expected + longest_after(s) for s in successors[activity_id]),
                default=timedelta(0),
            )
        return tail[activity_id]

    heads = [a for a in activities if not any(p in by_id for p in a.predecessors)]
    return [
        _Path(
            head=a,
            head_remaining=_remaining(a, now),
            rest=longest_after(a.id),
        )
        for a in heads
    ]


def _remaining(activity: ActivityTiming, now: datetime) -> timedelta:
    if activity.started_at is None:
        return activity.expected
    return max(timedelta(0), activity.expected - (now - activity.started_at))


def _overrun_at(activity: ActivityTiming, thresholds: Thresholds) -> datetime:
    return _started(activity) + activity.expected * (1 + thresholds.overrun)


def _started(activity: ActivityTiming) -> datetime:
    assert activity.started_at is not None
    return activity.started_at


def _critical(paths: Sequence[_Path], now: datetime) -> str:
    if not paths:
        return ""
    worst = max(paths, key=lambda p: p.projection(now, now))
    return f"; critical path starts at activity {worst.head.name}"


def _fmt(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M UTC")


def learned_duration(
    samples: Iterable[timedelta], *, percentile: float, min_samples: int, fallback: timedelta
) -> timedelta:
    """The catalog's duration until `min_samples` are known, then that percentile of what they took."""
    ordered = sorted(samples)
    if len(ordered) < min_samples or not ordered:
        return fallback
    return ordered[_nearest_rank(percentile, len(ordered))]


def learned_from_sorted(
    ordered_seconds: Sequence[float], *, percentile: float, min_samples: int
) -> float | None:
    """`learned_duration` of samples kept sorted, in seconds: None (the catalog's duration) until
    `min_samples` are known, then that percentile, without sorting or copying them again."""
    if len(ordered_seconds) < min_samples or not ordered_seconds:
        return None
    return ordered_seconds[_nearest_rank(percentile, len(ordered_seconds))]


def _nearest_rank(percentile: float, count: int) -> int:
    """Index of the nearest-rank percentile among `count` sorted samples."""
    return min(max(0, math.ceil(percentile / 100 * count) - 1), count - 1)
