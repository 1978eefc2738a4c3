"""Idempotency-Key answers of the SQL store, per client, kept a day (domain/idempotency.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    Table,
    Text,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from provtrack.adapters.store.tables import metadata
from provtrack.domain.idempotency import Answer, ClaimLost, KeyInUse, KeyRecord

if TYPE_CHECKING:
    from provtrack.adapters.store.transaction import SqlTransaction

idempotency_key = Table(
    "idempotency_key",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),  # method, path and body of the first request
    Column("state", Text, nullable=False),  # running | done
    Column("locked_until", Text),
    Column("status", Integer),
    Column("headers", Text),
    Column("body", Text),
    Column("claim", Text),  # who runs it now: a completion by anyone else fails
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Index("ix_idempotency_key_expires_at", "expires_at"),
)
_T = idempotency_key


def _record(row: Any) -> KeyRecord:
    answer = None
    if row.state == "done":
        answer = Answer(row.status, orjson.loads(row.headers or "{}"), row.body or "")
    return KeyRecord(
        client=row.client_id,
        key=row.key,
        fingerprint=row.fingerprint,
        claim=row.claim or "",
        locked_until=row.locked_until,
        created_at=row.created_at,
        expires_at=row.expires_at,
        answer=answer,
    )


class SqlIdempotencyRecords:
    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx

    def get(self, client: str, key: str) -> KeyRecord | None:
        row = self.tx.conn.execute(select(_T).where(_T.c.client_id == client, _T.c.key == key)).first()
        return None if row is None else _record(row)

    def claim(self, record: KeyRecord) -> None:
        values = {
            "fingerprint": record.fingerprint,
            "state": "running",
            "locked_until": record.locked_until,
            "status": None,
            "headers": None,
            "body": None,
            "claim": record.claim,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
        }

        now = record.created_at
        # Only what may be taken: an expired record, or a claim whose holder died. A concurrent
        # first use of the key loses on the primary key (PostgreSQL; SQLite has one writer).
        takeable = or_(_T.c.expires_at <= now, and_(_T.c.state == "running", _T.c.locked_until <= now))

        def claim(conn: Connection) -> None:
            where = (_T.c.client_id == record.client, _T.c.key == record.key, takeable)
            if conn.execute(update(_T).where(*where).values(**values)).rowcount == 1:
                return
            try:  # the transaction ends with the error: nothing else to keep
                conn.execute(insert(_T).values(client_id=record.client, key=record.key, **values))
            except IntegrityError:
                raise KeyInUse(f"a request with Idempotency-Key {record.key!r} is running") from None

        self.tx.write(claim)

    def complete(self, client: str, key: str, claim: str, answer: Answer) -> None:
        values = {
            "state": "done",
            "locked_until": None,
            "status": answer.status,
            "headers": orjson.dumps(answer.headers).decode(),
            "body": answer.body,
        }

        def complete(conn: Connection) -> None:
            held = (_T.c.client_id == client, _T.c.key == key, _T.c.claim == claim, _T.c.state == "running")
            if conn.execute(update(_T).where(*held).values(**values)).rowcount != 1:
                raise ClaimLost(f"Idempotency-Key {key!r} was taken over by a retry while this request ran")

        self.tx.write(complete, check=True)

    def release(self, client: str, key: str, claim: str) -> None:
        held = (_T.c.client_id == client, _T.c.key == key, _T.c.claim == claim, _T.c.state == "running")
        self.tx.write(lambda conn: conn.execute(delete(_T).where(*held)))

    def prune(self, *, now: str, limit: int) -> int:
        self.tx._not_optimistic("prune")
        expired = select(_T.c.client_id, _T.c.key).where(_T.c.expires_at <= now).limit(limit)
        rows = self.tx.conn.execute(expired).all()
        for client, key in rows:
            self.tx.conn.execute(delete(_T).where(_T.c.client_id == client, _T.c.key == key))
        return len(rows)
