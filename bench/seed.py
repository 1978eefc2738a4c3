"""Fill a store with realistic service orders, fast: real domain objects, inserted in bulk.

Each order is built the way the API builds it (`validate_new_order`, `ServiceOrder.accept`) and moved
through its life cycle with the domain's own state changes, so documents, columns and audit rows are
what provtrack would have stored. The mix of states is a typical operator backlog.

    python bench/seed.py --database sqlite:///bench.db --orders 100000
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import repeat

from bodies import order_body
from rich.progress import Progress

from provtrack.adapters.store.database import create_database_engine
from provtrack.adapters.store.migrate import upgrade_database
from provtrack.adapters.store.repository import SqlStore
from provtrack.domain.clock import format_datetime
from provtrack.domain.model import ServiceOrder
from provtrack.domain.states import OrderState
from provtrack.domain.validation import validate_new_order

S = OrderState
BATCH = 2_000
SPREAD = timedelta(days=90)  # the seeded orders' dates cover the last 90 days
ACTOR = "seed"


def build_order(n: int, order_date: datetime) -> ServiceOrder:
    order = ServiceOrder.accept(
        validate_new_order(order_body(n)),
        order_id=str(uuid.uuid4()),
        now=format_datetime(order_date),
        actor=ACTOR,
    )
    advance(order, n, order_date)
    return order


def advance(order: ServiceOrder, n: int, order_date: datetime) -> None:
    """Move the order along its life cycle; n picks where it stands (percentages of the backlog)."""
    started = format_datetime(order_date + timedelta(hours=1))
    finished = format_datetime(order_date + timedelta(days=2))
    bucket = n % 100

    def items(*states: tuple[str, OrderState, str]) -> None:
        for item_id, state, at in states:
            order.move_item(item_id, state, now=at, actor=ACTOR)

    if bucket < 10:  # acknowledged: 10%
        return
    if bucket < 95:
        items(("1", S.IN_PROGRESS, started))
    if bucket < 25:  # inProgress: 15%
        return
    if bucket < 28:  # held (set on the order by the engine or an operator): 3%
        order.move_to(S.HELD, now=finished, actor=ACTOR)
    elif bucket < 31:  # pending: 3%
        order.move_to(S.PENDING, now=finished, actor=ACTOR)
    elif bucket < 85:  # completed: 54%
        items(("2", S.IN_PROGRESS, started), ("1", S.COMPLETED, finished), ("2", S.COMPLETED, finished))
    elif bucket < 88:  # failed: 3%
        items(("2", S.IN_PROGRESS, started), ("1", S.FAILED, finished), ("2", S.FAILED, finished))
    elif bucket < 90:  # partial: 2%
        items(("2", S.IN_PROGRESS, started), ("1", S.COMPLETED, finished), ("2", S.FAILED, finished))
    elif bucket < 95:  # inProgress, the access delivered: 5%
        items(("1", S.COMPLETED, finished))
    elif bucket < 98:  # cancelled before start: 3%
        order.move_to(S.CANCELLED, now=started, actor=ACTOR)
    else:  # rejected: 2%
        order.move_to(S.REJECTED, now=started, actor=ACTOR)


def seed(url: str, count: int, *, processes: int | None = None) -> None:
    """Add `count` orders dated over the `SPREAD` before now, batches built and written in parallel.

    The store at `url` must be migrated. Each process writes its own batches in one transaction each;
    on SQLite they take turns on the write lock while the others build their next batch.
    """
    end = datetime.now(UTC)
    batches = [(first, min(first + BATCH, count)) for first in range(0, count, BATCH)]
    workers = processes or os.cpu_count() or 1
    with (
        Progress(transient=True) as progress,
        ProcessPoolExecutor(workers, initializer=_open_store, initargs=(url,)) as pool,
    ):
        task = progress.add_task(f"seeding {count} orders", total=count)
        for added in pool.map(_seed_batch, batches, repeat(count), repeat(end)):
            progress.advance(task, added)


_store: SqlStore | None = None  # one per seeding process


def _open_store(url: str) -> None:
    global _store  # noqa: PLW0603
    _store = SqlStore(create_database_engine(url))


def _seed_batch(batch: tuple[int, int], count: int, end: datetime) -> int:
    assert _store is not None
    step = SPREAD / max(count, 1)
    orders = [build_order(n, end - SPREAD + n * step) for n in range(*batch)]
    with _store.transaction(write=True) as tx:
        tx.add_orders(orders)
    return len(orders)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="sqlite:///PATH or postgresql://...")
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    engine = create_database_engine(args.database)
    upgrade_database(engine)
    engine.dispose()
    started = time.perf_counter()
    seed(args.database, args.orders)
    elapsed = time.perf_counter() - started
    print(f"seeded {args.orders} orders in {elapsed:.1f}s ({args.orders / elapsed:.0f} orders/s)")


if __name__ == "__main__":
    main()
