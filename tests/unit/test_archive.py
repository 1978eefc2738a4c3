"""The archive on the in-memory store, and the ages `provtrack archive --older-than` takes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import typer

from provtrack.adapters.memory_store import MemoryStore
from provtrack.cli.archive import parse_age
from tests import archive_cases


def test_finished_orders_older_than_the_cutoff_leave_the_list_and_stay_readable() -> None:
    archive_cases.finished_orders_older_than_the_cutoff_leave_the_list_and_stay_readable(MemoryStore())


def test_archiving_again_moves_nothing_twice() -> None:
    archive_cases.archiving_again_moves_nothing_twice(MemoryStore())


@pytest.mark.parametrize(
    ("text", "age"),
    [("90d", timedelta(days=90)), ("36h", timedelta(hours=36)), (" 45m ", timedelta(minutes=45))],
)
def test_an_age_is_days_hours_or_minutes(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["90", "d", "1y", "-3d", "P90D"])
def test_anything_else_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="90d, 36h, 45m"):
        parse_age(text)
