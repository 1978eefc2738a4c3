"""ISO 8601 durations (`PT2M`, `P3D`, `P1DT4H`, `P2W`) as catalog files write them."""

from __future__ import annotations

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
