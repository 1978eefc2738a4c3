"""Our hub subscriptions at downstream systems, one row per system: kept so that a restart checks
and reuses the one it has instead of subscribing again (docs/engine.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Row, Table, Text, delete, func, insert, select, update

from provtrack.adapters.store.tables import metadata
from provtrack.services.ports import DownstreamSubscription

if TYPE_CHECKING:
    from provtrack.adapters.store.transaction import SqlTransaction

LOCK_PREFIX = "provtrack.subscription:"  # advisory lock keys: hashtext of this and the system

downstream_subscription = Table(
    "downstream_subscription",
    metadata,
    Column("system", Text, primary_key=True),
    Column("hub_id", Text, nullable=False),
    Column("callback", Text, nullable=False),
    Column("base_url", Text, nullable=False),
    Column("made_at", Text),
)


class SqlDownstreamSubscriptions:
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def get(self, system: str) -> DownstreamSubscription | None:
        row = self.tx.conn.execute(
            select(downstream_subscription).where(downstream_subscription.c.system == system)
        ).first()
        return None if row is None else _subscription(row)

    def all(self) -> list[DownstreamSubscription]:
        rows = self.tx.conn.execute(
            select(downstream_subscription).order_by(downstream_subscription.c.system)
        )
        return [_subscription(r) for r in rows]

    def put(self, subscription: DownstreamSubscription) -> None:
        values = {
            "hub_id": subscription.hub_id,
            "callback": subscription.callback,
            "base_url": subscription.base_url,
            "made_at": subscription.made_at,
        }

        def put(conn: Connection) -> None:
            subscription_lock(conn, subscription.system, dialect=self.tx.dialect, shared=False)
            table = downstream_subscription
            changed = conn.execute(
                update(table).where(table.c.system == subscription.system).values(**values)
            )
            if changed.rowcount == 0:
                conn.execute(insert(table).values(system=subscription.system, **values))

        self.tx.write(put)

    def forget(self, system: str) -> None:
        table = downstream_subscription
        self.tx.write(lambda conn: conn.execute(delete(table).where(table.c.system == system)))


def _subscription(row: Row[Any]) -> DownstreamSubscription:
    return DownstreamSubscription(row.system, row.hub_id, row.callback, row.base_url, row.made_at)


def subscription_lock(conn: Connection, system: str, *, dialect: str, shared: bool) -> None:
    """PostgreSQL: the transaction-long lock that orders the recording of a subscription (exclusive)
    and the check of an answer recorded meanwhile (shared), so that one of them sees the other's
    rows even when the subscription is the first (no row to lock yet). SQLite's writer lock does it
    there."""
    if dialect == "postgresql":
        lock = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
        # Keyed by schema too: deployments sharing a server in schemas of their own do not wait.
        conn.execute(select(lock(func.hashtext(func.current_schema() + f":{LOCK_PREFIX}{system}"))))


def subscription_made_at(conn: Connection, system: str, *, dialect: str) -> str | None:
    """When our subscription at `system` was made (None: none, or made before migration 0013)."""
    subscription_lock(conn, system, dialect=dialect, shared=True)
    table = downstream_subscription
    made_at = conn.execute(select(table.c.made_at).where(table.c.system == system)).scalar()
    return None if made_at is None else str(made_at)
