"""Fill a store with realistic service orders, fast: real domain objects, inserted in bulk.

Each order is built the way the API builds it (`validate_new_order`, `ServiceOrder.accept`) and moved
through its life cycle with the domain's own state changes, so documents, columns and audit rows are
what provtrack would have stored. The mix of states is a typical operator backlog.

    python bench/seed.py --database sqlite:///bench.db --orders 100000
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

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


def seed_store(
    store: SqlStore, count: int, *, end: datetime, on_batch: Callable[[int], None] | None = None
) -> None:
    """Add `count` orders dated over the `SPREAD` before `end`, in order of date, in batches."""
    step = SPREAD / max(count, 1)
    start = end - SPREAD
    for first in range(0, count, BATCH):
        batch = [build_order(n, start + n * step) for n in range(first, min(first + BATCH, count))]
        with store.transaction(write=True) as tx:
            tx.add_orders(batch)
        if on_batch is not None:
            on_batch(len(batch))


def seed_with_progress(store: SqlStore, count: int) -> None:
    with Progress(transient=True) as progress:
        task = progress.add_task(f"seeding {count} orders", total=count)
        seed_store(store, count, end=datetime.now(UTC), on_batch=lambda n: progress.advance(task, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="sqlite:///PATH or postgresql://...")
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    engine = create_database_engine(args.database)
    upgrade_database(engine)
    store = SqlStore(engine)
    try:
        seed_with_progress(store, args.orders)
    finally:
        store.dispose()
    print(f"seeded {args.orders} orders into {engine.url.render_as_string(hide_password=True)}")


if __name__ == "__main__":
    main()
