"""The job queue in SQL: schedule (upsert on the natural key), claim under a lease, finish, retry.

Claiming takes due jobs whose lease is free or expired. PostgreSQL uses FOR UPDATE SKIP LOCKED so
many workers share the table; SQLite has one writer at a time, so a plain UPDATE ... RETURNING under
the write lock is enough.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Integer, Text, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.tables import job
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.jobs import Job, JobRequest


def schedule(conn: Connection, request: JobRequest, *, now: datetime, replace: bool = True) -> None:
    """Insert the job, or move the pending one with the same (kind, key) to the new due time."""
    values = {
        "kind": request.kind,
        "key": request.key,
        "due_at": format_datetime(request.due_at),
        "payload": orjson.dumps(request.payload).decode(),
        "attempts": 0,
        "created_at": format_datetime(now),
    }
    if request.lease is not None:
        values["lease_owner"] = request.lease.owner
        values["lease_expires_at"] = format_datetime(request.lease.until)
    statement = _schedule_statement(conn.dialect.name, replace=replace, leased=request.lease is not None)
    statement.execute(conn, values).close()


@functools.cache
def _schedule_statement(dialect: str, *, replace: bool, leased: bool) -> Prepared:
    # Built once: building an upsert and its `excluded` alias costs more than running it.
    columns: tuple[str, ...] = ("kind", "key", "due_at", "payload", "attempts", "created_at")
    if leased:
        columns += ("lease_owner", "lease_expires_at")
    insert = (pg_insert(job) if dialect == "postgresql" else sqlite_insert(job)).values(
        {name: bindparam(name) for name in columns}
    )
    if not replace:
        return Prepared(insert.on_conflict_do_nothing(index_elements=["kind", "key"]))
    replaced: dict[str, Any] = {
        "due_at": insert.excluded.due_at,
        "payload": insert.excluded.payload,
        "attempts": 0,
        "last_error": None,
        "failed_at": None,
    }
    if leased:  # the scheduler takes the job over, even from a lease that was running it
        replaced["lease_owner"] = insert.excluded.lease_owner
        replaced["lease_expires_at"] = insert.excluded.lease_expires_at
    return Prepared(insert.on_conflict_do_update(index_elements=["kind", "key"], set_=replaced))


_CANCEL = Prepared(delete(job).where(job.c.kind == bindparam("kind"), job.c.key == bindparam("key")))


def cancel(conn: Connection, kind: str, key: str) -> None:
    _CANCEL.execute(conn, {"kind": kind, "key": key}).close()


_HELD_BY = (
    job.c.kind == bindparam("kind"),
    job.c.key == bindparam("key"),
    job.c.lease_owner == bindparam("owner"),
)
_RELEASE_LEASE = Prepared(update(job).where(*_HELD_BY).values(lease_owner=None, lease_expires_at=None))
_RELEASE_FAILED = Prepared(
    update(job)
    .where(*_HELD_BY)
    .values(
        lease_owner=None,
        lease_expires_at=None,
        due_at=bindparam("due_at"),
        attempts=job.c.attempts + 1,
        last_error=bindparam("error"),
        failed_at=bindparam("failed_at"),
    )
)


def release(conn: Connection, kind: str, key: str, *, owner: str) -> None:
    """Give a held job up untouched: any worker runs it (at its due time)."""
    _RELEASE_LEASE.execute(conn, {"kind": kind, "key": key, "owner": owner}).close()


def release_failed(
    conn: Connection,
    kind: str,
    key: str,
    *,
    owner: str,
    due_at: datetime,
    error: str,
    failed: datetime | None,
) -> None:
    """A held job failed in its holder's hands: any worker runs it again at `due_at`, as after a
    failed run (`retry`), or nobody when `failed` (`give_up`)."""
    params = {
        "kind": kind,
        "key": key,
        "owner": owner,
        "due_at": format_datetime(due_at),
        "error": error[:4000],
        "failed_at": format_datetime(failed) if failed else None,
    }
    _RELEASE_FAILED.execute(conn, params).close()


def claim_due(conn: Connection, *, now: datetime, owner: str, lease_until: datetime, limit: int) -> list[Job]:
    params = {
        "now": format_datetime(now),
        "owner": owner,
        "until": format_datetime(lease_until),
        "limit": limit,
    }
    rows = _claim_statement(conn.dialect.name).all(conn, params)
    jobs = [
        Job(job_id, kind, key, parse_datetime(due_at), orjson.loads(payload), attempts)
        for job_id, kind, key, due_at, payload, attempts in rows
    ]
    jobs.sort(key=lambda j: (j.due_at, j.id))
    return jobs


# Built once: the worker runs these for every job, and building a statement costs more than running it.
_FINISH = Prepared(
    delete(job).where(
        job.c.id == bindparam("job_id"),
        job.c.lease_owner == bindparam("owner"),
        job.c.due_at == bindparam("due_at"),
    )
)
# Rescheduled while running: release the lease so the new occurrence runs.
_RELEASE = Prepared(
    update(job)
    .where(job.c.id == bindparam("job_id"), job.c.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_expires_at=None)
)


@functools.cache
def _claim_statement(dialect: str) -> Prepared:
    stamp: Any = bindparam("now", type_=Text)
    due = (
        select(job.c.id)
        .where(
            job.c.due_at <= stamp,
            job.c.failed_at.is_(None),
            or_(job.c.lease_expires_at.is_(None), job.c.lease_expires_at < stamp),
        )
        .order_by(job.c.due_at, job.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return Prepared(
        update(job)
        .where(job.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("until"))
        .returning(job.c.id, job.c.kind, job.c.key, job.c.due_at, job.c.payload, job.c.attempts)
    )


def finish(conn: Connection, claimed: Job, *, owner: str) -> None:
    """Remove a finished job, unless it was rescheduled (new due time) while it ran."""
    finish_many(conn, [claimed], owner=owner)


def finish_many(conn: Connection, claimed: Sequence[Job], *, owner: str) -> None:
    """`finish` for several jobs, one statement each (executemany)."""
    if not claimed:
        return
    params = [{"job_id": j.id, "owner": owner, "due_at": format_datetime(j.due_at)} for j in claimed]
    if _FINISH.executemany(conn, params) == len(params):
        return  # none was rescheduled while it ran
    _RELEASE.executemany(conn, [{"job_id": p["job_id"], "owner": owner} for p in params])


def retry(conn: Connection, claimed: Job, *, owner: str, due_at: datetime, error: str) -> None:
    conn.execute(
        update(job)
        .where(job.c.id == claimed.id, job.c.lease_owner == owner)
        .values(
            due_at=format_datetime(due_at),
            attempts=job.c.attempts + 1,
            lease_owner=None,
            lease_expires_at=None,
            last_error=error[:4000],
        )
    )


def give_up(conn: Connection, claimed: Job, *, owner: str, now: datetime, error: str) -> None:
    conn.execute(
        update(job)
        .where(job.c.id == claimed.id, job.c.lease_owner == owner)
        .values(
            attempts=job.c.attempts + 1,
            lease_owner=None,
            lease_expires_at=None,
            last_error=error[:4000],
            failed_at=format_datetime(now),
        )
    )


def next_due(conn: Connection) -> datetime | None:
    """The next due time of a job nobody runs (a crashed worker's lease is found by polling)."""
    value = conn.execute(
        select(func.min(job.c.due_at)).where(job.c.failed_at.is_(None), job.c.lease_owner.is_(None))
    ).scalar()
    return parse_datetime(value) if value else None


def pending(conn: Connection, *, kind: str | None = None) -> list[dict[str, Any]]:
    """Pending and failed jobs, for operators and tests."""
    stmt = select(job).order_by(job.c.due_at, job.c.id)
    if kind is not None:
        stmt = stmt.where(job.c.kind == kind)
    return [dict(r._mapping) for r in conn.execute(stmt)]
