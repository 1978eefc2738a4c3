"""Durations as people read them: the two largest units, at the precision of the smaller."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provtrack.domain.durations import humane_duration

UNIT_SECONDS = {"d": 86400, "h": 3600, "min": 60, "s": 1}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0.4s"),
        (2, "2s"),
        (4, "4s"),
        (9.94, "9.9s"),
        (9.96, "10s"),
        (45, "45s"),
        (59.6, "1min"),
        (60, "1min"),
        (65, "1min 05s"),
        (90, "1min 30s"),
        (3599.6, "1h"),
        (2 * 3600 + 5 * 60, "2h 05min"),
        (2 * 3600 + 5 * 60 + 29, "2h 05min"),
        (2 * 3600 + 5 * 60 + 30, "2h 06min"),
        (86399, "1d"),
        (3 * 86400 + 4 * 3600, "3d 4h"),
        (3 * 86400 + 4 * 3600 + 29 * 60, "3d 4h"),
        (20 * 86400, "20d"),
        (-4, "-4s"),
    ],
)
def test_a_duration_reads_in_its_two_largest_units(seconds: float, text: str) -> None:
    assert humane_duration(timedelta(seconds=seconds)) == text


def read_back(text: str) -> tuple[float, float]:
    """The seconds a humane duration says, and its precision: the unit below its largest one."""
    parts = re.findall(r"(\d+(?:\.\d)?)(d|h|min|s)", text)
    assert 1 <= len(parts) <= 2, text
    assert "".join(number + unit for number, unit in parts) == text.replace(" ", "")
    seconds = sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)
    largest = parts[0][1]
    precision = {"d": 3600, "h": 60, "min": 1, "s": 0.1 if seconds < 10 else 1}[largest]
    return seconds, precision


@given(st.floats(min_value=0, max_value=400 * 86400))
def test_a_duration_is_off_by_at_most_half_its_precision(seconds: float) -> None:
    shown, precision = read_back(humane_duration(timedelta(seconds=seconds)))
    assert abs(shown - seconds) <= precision / 2 + 1e-6
