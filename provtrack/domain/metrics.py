"""The arithmetic of the business metrics: cycle times kept as histograms of logarithmic buckets, so
that a day's figures roll up into one small row per bucket and any period's percentiles come from
adding them up; and the cutting of a period into whole rolled-up days and the live edges.

A bucket spans 5 % (bucket k holds [1.05^k, 1.05^(k+1)) seconds) and stands for its geometric
middle, so a percentile read from buckets is within 2.5 % of the exact one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

GROWTH = 1.05  # each bucket 5 % wider than the one before
_LOG = math.log(GROWTH)


UNDER_A_SECOND = -1  # the bucket of durations under a second, which stands for 0


def bucket_of(seconds: float) -> int:
    """The bucket a duration falls in."""
    if seconds < 1:
        return UNDER_A_SECOND
    return math.floor(math.log(seconds) / _LOG + 1e-9)


def bucket_value(bucket: int) -> float:
    """The duration a bucket stands for: its geometric middle, rounded to the second."""
    if bucket == UNDER_A_SECOND:
        return 0.0
    return float(round(GROWTH ** (bucket + 0.5)))


def nearest_rank(n: int, percentile: int) -> int:
    """The rank of the nearest-rank percentile among n sorted values: ceil(p/100 * n), at least 1."""
    return max(1, (n * percentile + 99) // 100)


def percentile_of(histogram: Mapping[int, int], percentile: int) -> float:
    """The nearest-rank percentile of the durations counted in `histogram` (bucket -> count)."""
    total = sum(histogram.values())
    if total == 0:
        raise ValueError("no durations counted")
    rank = nearest_rank(total, percentile)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_value(bucket)
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Split:
    """A period cut at day boundaries: whole days read from the roll-up, and the instants around
    them (at most two ranges) read live."""

    rolled: tuple[date, date] | None  # first and last day, both included
    live: tuple[tuple[datetime, datetime], ...]


def split_period(start: datetime, end: datetime, rolled_through: date | None) -> Split:
    """Whole days of [start, end) up to `rolled_through` come from the roll-up; the rest is live."""
    first = (
        start.date() if start.timetz() == time(0, tzinfo=start.tzinfo) else start.date() + timedelta(days=1)
    )
    last = end.date() - timedelta(days=1)  # the last day that ends by `end`
    if rolled_through is not None:
        last = min(last, rolled_through)
    if rolled_through is None or first > last:
        return Split(None, ((start, end),))
    tz = start.tzinfo
    day_start = datetime.combine(first, time(0), tz)
    day_end = datetime.combine(last + timedelta(days=1), time(0), tz)
    live = tuple((a, b) for a, b in ((start, day_start), (day_end, end)) if a < b)
    return Split((first, last), live)


def days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# --- a day's figures, as the roll-up keeps them -------------------------------------------------

OrderRow = tuple[
    str, str, int, int, int, int, int
]  # day, spec, bucket, orders, with requested, on time, jeopardized
ActivityRow = tuple[str, str, str, int, int, int]  # day, owner, name, activities, fell out, fallouts


def roll_orders(
    completed: Iterable[tuple[str, str | None, float, str | None, int]],
) -> list[OrderRow]:
    """(completion date, specification, cycle seconds, requested completion, jeopardized) of
    completed orders -> one row per day, specification and cycle-time bucket."""
    rows: dict[tuple[str, str, int], list[int]] = {}
    for completed_at, spec, seconds, requested, jeopardized in completed:
        counts = rows.setdefault((completed_at[:10], spec or "", bucket_of(seconds)), [0, 0, 0, 0])
        counts[0] += 1
        if requested:
            counts[1] += 1
            counts[2] += int(completed_at <= requested)
        counts[3] += int(bool(jeopardized))
    return [(day, spec, bucket, *counts) for (day, spec, bucket), counts in sorted(rows.items())]  # type: ignore[misc]


def roll_activities(finished: Iterable[tuple[str, str, str | None, int]]) -> list[ActivityRow]:
    """(finished at, owner, name, fallouts) of finished activities -> one row per day and kind."""
    rows: dict[tuple[str, str, str], list[int]] = {}
    for finished_at, owner, name, fallouts in finished:
        counts = rows.setdefault((finished_at[:10], owner, name or ""), [0, 0, 0])
        counts[0] += 1
        counts[1] += int(fallouts > 0)
        counts[2] += fallouts
    return [(day, owner, name, *counts) for (day, owner, name), counts in sorted(rows.items())]  # type: ignore[misc]
