"""The metrics' arithmetic: percentiles from 5 % buckets stay within 2.5 % of the exact nearest rank,
and a period is cut into rolled-up whole days and live edges that cover it exactly once."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from provtrack.domain.metrics import GROWTH, bucket_of, percentile_of, split_period


@given(
    st.lists(st.floats(min_value=1, max_value=90 * 86400), min_size=1, max_size=200),
    st.sampled_from([50, 90]),
)
def test_a_percentile_read_from_buckets_is_within_two_and_a_half_percent(values: list[float], p: int) -> None:
    histogram: dict[int, int] = {}
    for v in values:
        histogram[bucket_of(v)] = histogram.get(bucket_of(v), 0) + 1
    exact = sorted(values)[max(1, math.ceil(p / 100 * len(values))) - 1]

    assert abs(percentile_of(histogram, p) - exact) <= 0.025 * exact + 1  # + the rounding to a second


def test_bucket_k_holds_the_durations_from_1_05_to_the_k_up_to_five_percent_more() -> None:
    for k in (1, 50, 170, 300):
        assert bucket_of(GROWTH**k) == k
        assert bucket_of(GROWTH**k * 1.049) == k
        assert bucket_of(GROWTH**k * 1.051) == k + 1


T0 = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


@given(
    st.integers(min_value=0, max_value=20 * 24 * 60),
    st.integers(min_value=1, max_value=20 * 24 * 60),
    st.one_of(st.none(), st.integers(min_value=-3, max_value=25)),
)
def test_a_period_is_cut_into_rolled_days_and_live_edges_covering_it_once(
    offset: int, length: int, rolled: int | None
) -> None:
    start = T0 + timedelta(minutes=offset)
    end = start + timedelta(minutes=length)
    through = None if rolled is None else date(2026, 11, 1) + timedelta(days=rolled)

    split = split_period(start, end, through)

    pieces = list(split.live)
    if split.rolled is not None:
        first, last = split.rolled
        assert through is not None
        assert last <= through
        pieces.append(
            (
                datetime.combine(first, datetime.min.time(), UTC),
                datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC),
            )
        )
    pieces.sort()
    assert pieces[0][0] == start
    assert pieces[-1][1] == end
    for (_, b), (a, _) in itertools.pairwise(pieces):
        assert a == b  # no gap, no overlap
