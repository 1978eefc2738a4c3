"""Access records of the SQL store: API keys (hashes only), who placed an order, listener tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Table, Text, UniqueConstraint, insert, select, update

from provtrack.adapters.store.tables import cancel_service_order, metadata, service_order
from provtrack.domain.access import ApiKey

if TYPE_CHECKING:
    from provtrack.adapters.store.transaction import SqlTransaction

api_key = Table(
    "api_key",
    metadata,
    Column("id", Text, primary_key=True),
    Column("client_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("scopes", Text, nullable=False),  # space separated
    Column("token_hash", Text, nullable=False),  # SHA-256 of the token; the token is never kept
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text),
    Column("revoked_at", Text),
    UniqueConstraint("token_hash", name="uq_api_key_token_hash"),
)

listener_token = Table(
    "listener_token",
    metadata,
    Column("source", Text, primary_key=True),  # tmf652:<system>, and the partner and TMF622 listeners
    Column("token", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        client=row.client_id,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        token_hash=row.token_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlAccessRecords:
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def add_key(self, key: ApiKey) -> None:
        values = {
            "id": key.id,
            "client_id": key.client,
            "name": key.name,
            "scopes": " ".join(sorted(key.scopes)),
            "token_hash": key.token_hash,
            "created_at": key.created_at,
            "expires_at": key.expires_at,
            "revoked_at": key.revoked_at,
        }
        self.tx.write(lambda conn: conn.execute(insert(api_key).values(**values)))

    def key_by_hash(self, token_hash: str) -> ApiKey | None:
        row = self.tx.conn.execute(select(api_key).where(api_key.c.token_hash == token_hash)).first()
        return None if row is None else _key(row)

    def api_keys(self) -> list[ApiKey]:
        rows = self.tx.conn.execute(select(api_key).order_by(api_key.c.client_id, api_key.c.created_at))
        return [_key(row) for row in rows]

    def revoke_key(self, key_id: str, *, at: str) -> bool:
        self.tx._not_optimistic("revoke_key")
        result = self.tx.conn.execute(
            update(api_key)
            .where(api_key.c.id == key_id, api_key.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return result.rowcount == 1

    def order_client(self, order_id: str) -> tuple[str | None] | None:
        row = self.tx.conn.execute(
            select(service_order.c.client_id).where(service_order.c.id == order_id)
        ).first()
        return None if row is None else (row.client_id,)

    def task_order(self, task_id: str) -> str | None:
        order_id: str | None = self.tx.conn.execute(
            select(cancel_service_order.c.service_order_id).where(cancel_service_order.c.id == task_id)
        ).scalar()
        return order_id

    def listener_token(self, source: str) -> str | None:
        token: str | None = self.tx.conn.execute(
            select(listener_token.c.token).where(listener_token.c.source == source)
        ).scalar()
        return token

    def put_listener_token(self, source: str, token: str, *, at: str) -> None:
        def put(conn: Connection) -> None:
            changed = conn.execute(
                update(listener_token).where(listener_token.c.source == source).values(token=token)
            )
            if changed.rowcount == 0:
                conn.execute(insert(listener_token).values(source=source, token=token, created_at=at))

        self.tx.write(put)
