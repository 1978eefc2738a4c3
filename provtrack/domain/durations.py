"""ISO 8601 durations (`PT2M`, `P3D`, `P1DT4H`, `P2W`) as catalog files write them."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class InvalidDuration(ValueError):
    """Not an ISO 8601 duration provtrack understands (years and months have no fixed length)."""


def parse_duration(text: object) -> timedelta:
    if not isinstance(text, str) or text in ("P", "PT") or text.endswith("T"):
        raise InvalidDuration(f"{text!r} is not an ISO 8601 duration such as PT30M, P2D or P1DT4H")
    match = _DURATION.match(text)
    if match is None:
        raise InvalidDuration(f"{text!r} is not an ISO 8601 duration such as PT30M, P2D or P1DT4H")
    parts = {name: float(value) for name, value in match.groupdict().items() if value is not None}
    return timedelta(**parts)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"


def humane_duration(value: timedelta) -> str:
    """A duration for people, in its two largest units, rounded to the smaller: `0.4s`, `4s`,
    `1min 30s`, `2h 05min`, `3d 4h`. Below 10 s it keeps a tenth of a second."""
    seconds = value.total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if (tenths := _round(seconds * 10)) < 100:
        return f"{sign}{tenths / 10:g}s"
    if (whole := _round(seconds)) < 3600:
        minutes, secs = divmod(whole, 60)
        return sign + (f"{minutes}min" + (f" {secs:02d}s" if secs else "") if minutes else f"{secs}s")
    if (whole := _round(seconds / 60)) < 24 * 60:
        hours, minutes = divmod(whole, 60)
        return f"{sign}{hours}h" + (f" {minutes:02d}min" if minutes else "")
    days, hours = divmod(_round(seconds / 3600), 24)
    return f"{sign}{days}d" + (f" {hours}h" if hours else "")


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # halves up: 1.5 s is 2s, as people round
