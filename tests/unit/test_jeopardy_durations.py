"""Learned durations from the cached history: recorded samples count at once, once each, no re-read."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from provtrack.adapters.store.escalation import DurationCache, DurationSample
from provtrack.domain.jeopardy import learned_duration, learned_from_sorted

KEY = ("ftth", "reserve OLT port")


class History:
    """A stand-in for the history query: the samples it holds, and how often it was read."""

    def __init__(self, samples: list[DurationSample]) -> None:
        self.samples = samples
        self.reads = 0

    def __call__(self) -> list[DurationSample]:
        self.reads += 1
        return list(self.samples)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sample(n: int, seconds: float) -> DurationSample:
    return DurationSample(f"2026-11-27T09:00:{n:02d}.000Z", f"activity-{n}", seconds)


def learned(cache: DurationCache, read: History, *, min_samples: int = 3) -> float | None:
    return cache.learned_seconds(KEY, read, percentile=50, min_samples=min_samples)


def test_a_recorded_duration_counts_in_the_learned_value_without_reading_the_history_again() -> None:
    read = History([sample(1, 60.0), sample(2, 120.0)])
    cache = DurationCache()
    assert learned(cache, read) is None  # two samples, three needed: the catalog's duration

    cache.record(KEY, [sample(3, 180.0)])

    assert learned(cache, read) == 120.0
    assert cache.samples(KEY, read) == [180.0, 120.0, 60.0]
    assert read.reads == 1


def test_an_activity_recorded_twice_counts_once() -> None:
    read = History([sample(1, 60.0), sample(2, 120.0)])
    cache = DurationCache()
    learned(cache, read)

    cache.record(KEY, [sample(3, 180.0)])
    cache.record(KEY, [sample(3, 180.0)])  # a transaction retried after a conflict
    cache.record(KEY, [sample(2, 120.0)])  # one the history already holds

    assert cache.samples(KEY, read) == [180.0, 120.0, 60.0]
    assert learned(cache, read, min_samples=4) is None


def test_the_cache_keeps_the_newest_window_as_the_history_query_does() -> None:
    read = History([sample(n, float(n)) for n in range(1, 4)])
    cache = DurationCache(window=3)
    cache.samples(KEY, read)

    cache.record(KEY, [sample(5, 5.0), sample(4, 4.0)])
    cache.record(KEY, [sample(0, 0.0)])  # finished before everything the window keeps

    assert cache.samples(KEY, read) == [5.0, 4.0, 3.0]
    assert learned(cache, read) == 4.0


def test_samples_recorded_elsewhere_show_once_the_entry_is_max_age_old() -> None:
    read = History([sample(1, 60.0)])
    clock = Clock()
    cache = DurationCache(max_age=30.0, clock=clock)
    assert cache.samples(KEY, read) == [60.0]

    read.samples.append(sample(2, 120.0))  # another process recorded it
    clock.now = 29.9
    assert cache.samples(KEY, read) == [60.0]
    clock.now = 30.0
    assert cache.samples(KEY, read) == [120.0, 60.0]
    assert read.reads == 2


def test_recording_a_kind_the_cache_has_not_read_waits_for_the_read() -> None:
    read = History([sample(1, 60.0)])
    cache = DurationCache()
    cache.record(KEY, [sample(2, 120.0)])  # the row is in the table, which the read will find

    assert cache.samples(KEY, read) == [60.0]
    assert read.reads == 1


seconds = st.floats(min_value=0, max_value=10**7, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    recorded=st.lists(st.tuples(st.integers(min_value=0, max_value=40), seconds), max_size=60),
    window=st.integers(min_value=1, max_value=12),
    percentile=st.floats(min_value=0.5, max_value=100),
    min_samples=st.integers(min_value=1, max_value=8),
)
def test_the_cached_learned_value_is_learned_duration_of_the_newest_window(
    recorded: list[tuple[int, float]], window: int, percentile: float, min_samples: int
) -> None:
    cache = DurationCache(window=window)
    cache.samples(KEY, History([]))
    first: dict[int, float] = {}
    for n, value in recorded:
        first.setdefault(n, value)  # the table keeps an activity's first duration
        cache.record(KEY, [sample(n, value)])
    newest = [first[n] for n in sorted(first, reverse=True)][:window]
    catalog = timedelta(minutes=30)

    value = cache.learned_seconds(KEY, History([]), percentile=percentile, min_samples=min_samples)

    expected = learned_duration(
        (timedelta(seconds=s) for s in newest),
        percentile=percentile,
        min_samples=min_samples,
        fallback=catalog,
    )
    assert (catalog if value is None else timedelta(seconds=value)) == expected
    assert cache.samples(KEY, History([])) == newest


@given(samples=st.lists(seconds, max_size=50), percentile=st.floats(min_value=0.5, max_value=100))
def test_learned_from_sorted_agrees_with_learned_duration(samples: list[float], percentile: float) -> None:
    catalog = timedelta(minutes=30)
    for min_samples in (1, 5, 20):
        value = learned_from_sorted(sorted(samples), percentile=percentile, min_samples=min_samples)
        expected = learned_duration(
            [timedelta(seconds=s) for s in samples],
            percentile=percentile,
            min_samples=min_samples,
            fallback=catalog,
        )
        assert (catalog if value is None else timedelta(seconds=value)) == expected
