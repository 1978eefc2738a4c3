"""Archiving: finished orders leave the hot tables and the default lists, and stay readable by id and
by `asOf`, so the working set stays small as years accumulate.

One batch, one transaction: a run interrupted anywhere has moved whole batches only, and running it
again moves what is left (an archived order is no longer among the ones it looks at).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from provtrack.domain.clock import format_datetime
from provtrack.domain.states import OrderState
from provtrack.services.ports import Store

# Orders that will never change again. `partial` and `rejected` end too, but an operator may still
# act on a partial order's failed items, and rejected orders are few: they stay.
FINISHED_STATES = (OrderState.COMPLETED.value, OrderState.FAILED.value, OrderState.CANCELLED.value)


def archivable_orders(store: Store, *, older_than: timedelta, now: datetime) -> int:
    """How many orders an archive run would move now (for its progress bar)."""
    with store.transaction(write=False) as tx:
        return tx.archive.count_finished(states=FINISHED_STATES, before=format_datetime(now - older_than))


def archive_finished_orders(
    store: Store,
    *,
    older_than: timedelta,
    now: datetime,
    batch: int,
    moved: Callable[[int], None] = lambda _count: None,
) -> int:
    """Move the orders finished more than `older_than` before `now` to the archive, `batch` per
    transaction, calling `moved` after each; returns how many moved."""
    before, stamp = format_datetime(now - older_than), format_datetime(now)
    total = 0
    while True:
        with store.transaction(write=True) as tx:
            count = tx.archive.move_finished(states=FINISHED_STATES, before=before, now=stamp, limit=batch)
        if count:
            total += count
            moved(count)
        if count < batch:
            return total
