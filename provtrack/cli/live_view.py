"""The live view beside `provtrack serve`: how many orders are in each state, and the last transitions,
read from the database every half second (any process's orders, not this one's HTTP traffic).

On a terminal it is a compact Rich panel redrawn in place. Anywhere else (a log file, CI, a
container) it is plain lines: one per order state change as it is recorded, and a summary line every
`summary_every` seconds. Lines are never wrapped or cut: order ids are printed whole.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from provtrack.adapters.store.live import (
    OrderChange,
    jeopardy_of_open_orders,
    last_change_id,
    order_changes_since,
    orders_per_state,
)
from provtrack.cli.options import stderr_console
from provtrack.domain.states import TERMINAL_STATES

IN_JEOPARDY = frozenset({"inJeopardy", "late"})
FINISHED = frozenset(s.value for s in TERMINAL_STATES)
# What the summary names, in this order; other states are counted in `created` only.
SHOWN = (("inProgress", "in progress"), ("completed", "completed"), ("held", "held"))
ALSO_SHOWN_WHEN_ANY = (
    ("pending", "pending"),
    ("cancelled", "cancelled"),
    ("failed", "failed"),
    ("partial", "partial"),
    ("rejected", "rejected"),
)


class OrderWatch:
    """Follows the database: orders per state now, and the changes recorded since the last look."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            self.after = last_change_id(conn)
            self.jeopardy = jeopardy_of_open_orders(conn)
        self.counts: dict[str, int] = {}

    def look(self) -> list[OrderChange]:
        with self.engine.connect() as conn:
            self.counts = orders_per_state(conn)
            changes = order_changes_since(conn, self.after)
        for change in changes:
            self.after = change.id
            if change.attribute == "jeopardyAlert" and change.new not in (None, "onTrack"):
                self.jeopardy[change.order_id] = str(change.new)
            elif change.attribute == "jeopardyAlert" or change.new in FINISHED:
                self.jeopardy.pop(change.order_id, None)
        return changes

    @property
    def in_jeopardy(self) -> int:
        return sum(1 for level in self.jeopardy.values() if level in IN_JEOPARDY)


def summary_line(counts: dict[str, int], in_jeopardy: int) -> str:
    """`orders: 37 created, 11 in progress, 23 completed, 3 held, 0 in jeopardy`."""
    parts = [f"{sum(counts.values())} created"]
    parts += [f"{counts.get(state, 0)} {name}" for state, name in SHOWN]
    parts += [f"{counts[state]} {name}" for state, name in ALSO_SHOWN_WHEN_ANY if counts.get(state)]
    parts.append(f"{in_jeopardy} in jeopardy")
    return "orders: " + ", ".join(parts)


def change_line(change: OrderChange) -> str:
    """`2026-12-01T16:40:01.123Z order <id> (BSS-123456) inProgress -> completed`."""
    external = f" ({change.external_id})" if change.external_id else ""
    what = "jeopardy " if change.attribute == "jeopardyAlert" else ""
    before = change.old or ("onTrack" if what else "new")
    return f"{change.at} order {change.order_id}{external} {what}{before} -> {change.new}"


class LiveView:
    """Runs in a thread beside the server until `stop`; `lines` forces the plain form (tests)."""

    def __init__(
        self,
        engine: Engine,
        *,
        summary_every: float = 10.0,
        poll_every: float = 0.5,
        lines: bool | None = None,
    ) -> None:
        self.watch = OrderWatch(engine)
        self.summary_every = summary_every
        self.poll_every = poll_every
        self.console = stderr_console()
        self.lines = not self.console.is_terminal if lines is None else lines
        self.stopping = threading.Event()
        self.recent: deque[OrderChange] = deque(maxlen=8)
        self._thread: threading.Thread | None = None
        self._failing = False

    @contextmanager
    def running(self) -> Iterator[None]:
        if self.lines:
            self._thread = threading.Thread(target=self._print_lines, name="provtrack-live-view", daemon=True)
            self._thread.start()
            try:
                yield
            finally:
                self.stopping.set()
                self._thread.join(timeout=5)
            return
        with self._live() as live:
            self._thread = threading.Thread(
                target=self._redraw, args=(live,), name="provtrack-live-view", daemon=True
            )
            self._thread.start()
            try:
                yield
            finally:
                self.stopping.set()
                self._thread.join(timeout=5)

    # --- plain lines ------------------------------------------------------------------------------

    def _print_lines(self) -> None:
        last_summary = 0.0
        while not self.stopping.is_set():
            for change in self._look():
                self._print(change_line(change))
            if time.monotonic() - last_summary >= self.summary_every:
                self._print(summary_line(self.watch.counts, self.watch.in_jeopardy))
                last_summary = time.monotonic()
            self.stopping.wait(self.poll_every)

    def _print(self, line: str) -> None:
        # A console per line: the stream as it is now, never wrapped (cli/options.py).
        stderr_console().print(line, markup=False, highlight=False, soft_wrap=True)

    def _look(self) -> list[OrderChange]:
        try:
            changes = self.watch.look()
        except Exception as exc:  # the database away for a moment: say so once, keep watching
            if not self._failing:
                logging.getLogger("provtrack.live").warning("live view cannot read the database: %s", exc)
            self._failing = True
            return []
        self._failing = False
        return changes

    # --- the terminal panel -----------------------------------------------------------------------

    @contextmanager
    def _live(self) -> Iterator[Live]:
        console: Console = self.console
        with Live(self._panel(), console=console, refresh_per_second=4, transient=False) as live:
            moved = _point_logging_at(sys.stderr)  # log lines scroll above the panel
            try:
                yield live
            finally:
                for handler, stream in moved:
                    handler.setStream(stream)

    def _redraw(self, live: Live) -> None:
        while not self.stopping.is_set():
            self.recent.extend(self._look())
            live.update(self._panel())
            self.stopping.wait(self.poll_every)

    def _panel(self) -> Panel:
        summary = Text(summary_line(self.watch.counts, self.watch.in_jeopardy), no_wrap=True)
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column("at", no_wrap=True, style="dim")
        table.add_column("order", no_wrap=True)
        table.add_column("change", no_wrap=True)
        for change in self.recent:
            external = f" {change.external_id}" if change.external_id else ""
            what = "jeopardy " if change.attribute == "jeopardyAlert" else ""
            before = change.old or ("onTrack" if what else "new")
            table.add_row(change.at[11:19], f"{change.order_id}{external}", f"{what}{before} -> {change.new}")
        return Panel(Group(summary, table), title="orders (live)", title_align="left", expand=False)


def _point_logging_at(stream: TextIO) -> list[tuple[logging.StreamHandler[TextIO], TextIO]]:
    """Send the root logger's stream handlers to `stream`; returns each with the stream it had."""
    moved = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            moved.append((handler, handler.stream))
            handler.setStream(stream)
    return moved
