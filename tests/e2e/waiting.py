"""Waiting for another process to reach a state: polled, bounded, failing with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.01) -> None:
    """Until `condition()` holds, looking `every` seconds (longer for a costly look); fails after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
