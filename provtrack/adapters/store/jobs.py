"""The job queue in SQL: every statement on the `job` table is here, named.

Scheduling upserts on the natural key `(kind, key)`. What happens when the job exists already is one
of three rules, chosen by the request:

- **replace** (the default): the pending job, or the running one, moves to the new due time with
  its attempts and error cleared; a running job whose due time moved runs again when it ends (the
  worker deletes a finished job only if its due time is still the one it claimed).
- **keep** (`replace=False`): the existing job is left as it is (work that must run once).
- **run again** (`JobRequest.run_again`): a pending job is left as it is (it may be backing off or
  parked), and a running one is moved so that it runs once more when it ends (work was added while
  it ran: a delivery stream's new events, a subscription's newly queued replays).

Besides: `cancel`/`cancel_prefix` delete jobs, `run_now` brings pending jobs forward (a running
one runs again), `move_if` moves a job only while a condition holds in the same statement, and
`exists_for` is the clause other tables' statements use to ask whether a job exists.

Claiming takes due jobs whose lease is free or expired. PostgreSQL uses FOR UPDATE SKIP LOCKED so
many workers share the table; SQLite has one writer at a time, so a plain UPDATE ... RETURNING under
the write lock is enough.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.expression import Exists

from provtrack.adapters.store.prepared import Prepared
from provtrack.adapters.store.tables import job
from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.jobs import Job, JobRequest

# A running job's due time must differ from the one it was claimed with for it to run again: a
# millisecond earlier, so that it is due at once when it ends.
_NUDGE = timedelta(milliseconds=1)

# For the SQLite wake-up watcher (notify.py), on its own sqlite3 connection: is a job nobody runs due?
DUE_JOB_WAITING_SQL = (
    "SELECT 1 FROM job WHERE due_at <= ? AND failed_at IS NULL "
    "AND (lease_expires_at IS NULL OR lease_expires_at < ?) LIMIT 1"
)


def schedule(conn: Connection, request: JobRequest, *, now: datetime, replace: bool = True) -> None:
    """Insert the job; if it exists: replace it, keep it (`replace=False`) or have it run again
    (`request.run_again`), as the module says."""
    values = {
        "kind": request.kind,
        "key": request.key,
        "due_at": format_datetime(request.due_at),
        "payload": orjson.dumps(request.payload).decode(),
        "attempts": 0,
        "claims": 1 if request.lease is not None else 0,  # a job scheduled held is its scheduler's claim
        "created_at": format_datetime(now),
    }
    if request.run_again:
        values["nudged"] = format_datetime(request.due_at - _NUDGE)
        _run_again_statement(conn.dialect.name).execute(conn, values).close()
        return
    if request.lease is not None:
        values["lease_owner"] = request.lease.owner
        values["lease_expires_at"] = format_datetime(request.lease.until)
    statement = _schedule_statement(conn.dialect.name, replace=replace, leased=request.lease is not None)
    statement.execute(conn, values).close()


def _insert(dialect: str, columns: tuple[str, ...]) -> Any:
    insert = pg_insert(job) if dialect == "postgresql" else sqlite_insert(job)
    return insert.values({name: bindparam(name) for name in columns})


_COLUMNS: tuple[str, ...] = ("kind", "key", "due_at", "payload", "attempts", "claims", "created_at")


@functools.cache
def _schedule_statement(dialect: str, *, replace: bool, leased: bool) -> Prepared:
    # Built once: building an upsert and its `excluded` alias costs more than running it.
    insert = _insert(dialect, _COLUMNS + (("lease_owner", "lease_expires_at") if leased else ()))
    if not replace:
        return Prepared(insert.on_conflict_do_nothing(index_elements=["kind", "key"]))
    replaced: dict[str, Any] = {
        "due_at": insert.excluded.due_at,
        "payload": insert.excluded.payload,
        "attempts": 0,
        "claims": insert.excluded.claims,
        "last_error": None,
        "failed_at": None,
    }
    if leased:  # the scheduler takes the job over, even from a lease that was running it
        replaced["lease_owner"] = insert.excluded.lease_owner
        replaced["lease_expires_at"] = insert.excluded.lease_expires_at
    return Prepared(insert.on_conflict_do_update(index_elements=["kind", "key"], set_=replaced))


@functools.cache
def _run_again_statement(dialect: str) -> Prepared:
    # Every transaction that writes events runs it, once per stream it concerns: built once.
    insert = _insert(dialect, _COLUMNS)
    due: Any = bindparam("due_at", type_=Text)
    return Prepared(
        insert.on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={"due_at": case((job.c.due_at == due, bindparam("nudged", type_=Text)), else_=due)},
            where=job.c.lease_owner.is_not(None),
        )
    )


def run_now(
    conn: Connection, kind: str, *, now: datetime, key: str | None = None, key_prefix: str = ""
) -> int:
    """Bring the pending jobs of `kind` (with `key`, or keys starting with `key_prefix`) that are due
    later forward to `now`; running ones run again when they end. Returns how many moved."""
    stamp, nudged = format_datetime(now), format_datetime(now - _NUDGE)
    chosen = job.c.key == key if key is not None else job.c.key.startswith(key_prefix, autoescape=True)
    return conn.execute(
        update(job)
        .where(job.c.kind == kind, chosen, or_(job.c.due_at > stamp, job.c.lease_owner.is_not(None)))
        .values(due_at=case((job.c.due_at == stamp, nudged), else_=stamp))
    ).rowcount


def move_if(
    conn: Connection, kind: str, key: str, *, due_at: datetime, condition: ColumnElement[bool]
) -> bool:
    """Move the job to `due_at` if `condition` holds, checked in the same statement (a concurrent
    transaction cannot slip in between). False if there was no such job or the condition failed."""
    moved = conn.execute(
        update(job)
        .where(and_(job.c.kind == kind, job.c.key == key, condition))
        .values(due_at=format_datetime(due_at))
    )
    return bool(moved.rowcount == 1)


def exists_for(kind: str, key: ColumnElement[str]) -> Exists:
    """For other tables' statements: a job of `kind` with key `key` exists (pending or running)."""
    return exists().where(job.c.kind == kind, job.c.key == key).correlate_except(job)


def cancel_prefix(conn: Connection, kind: str, key_prefix: str) -> int:
    """Delete the jobs of `kind` whose key starts with `key_prefix`; returns how many."""
    return conn.execute(
        delete(job).where(job.c.kind == kind, job.c.key.startswith(key_prefix, autoescape=True))
    ).rowcount


_CANCEL = Prepared(delete(job).where(job.c.kind == bindparam("kind"), job.c.key == bindparam("key")))


def cancel(conn: Connection, kind: str, key: str) -> None:
    """Delete the job of `kind` and `key`, pending or running (a running one is not run again)."""
    _CANCEL.execute(conn, {"kind": kind, "key": key}).close()


_HELD_BY = (
    job.c.kind == bindparam("kind"),
    job.c.key == bindparam("key"),
    job.c.lease_owner == bindparam("owner"),
)
# A job given back (untouched, failed, or to run again) starts its claims afresh: nobody holds it.
_RELEASE_LEASE = Prepared(
    update(job).where(*_HELD_BY).values(lease_owner=None, lease_expires_at=None, claims=0)
)
_RELEASE_FAILED = Prepared(
    update(job)
    .where(*_HELD_BY)
    .values(
        lease_owner=None,
        lease_expires_at=None,
        claims=0,
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
        Job(job_id, kind, key, parse_datetime(due_at), orjson.loads(payload), attempts, taken_over=claims > 1)
        for job_id, kind, key, due_at, payload, attempts, claims in rows
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
    .values(lease_owner=None, lease_expires_at=None, claims=0)
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
        # A claim of a job claimed before and not finished: its holder died (its lease ran out).
        .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("until"), claims=job.c.claims + 1)
        .returning(job.c.id, job.c.kind, job.c.key, job.c.due_at, job.c.payload, job.c.attempts, job.c.claims)
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
            claims=0,
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


def counts(conn: Connection, *, now: datetime, late_after: timedelta) -> dict[str, int]:
    """For monitoring: jobs due now and not being run, those of them due for longer than
    `late_after` (nobody is taking them: no worker alive, or too few), and failed ones."""
    stamp, late = format_datetime(now), format_datetime(now - late_after)
    waiting = and_(
        job.c.failed_at.is_(None),
        job.c.due_at <= stamp,
        or_(job.c.lease_owner.is_(None), job.c.lease_expires_at < stamp),
    )
    row = conn.execute(
        select(
            func.count().filter(waiting),
            func.count().filter(and_(waiting, job.c.due_at <= late)),
            func.count().filter(job.c.failed_at.is_not(None)),
        ).select_from(job)
    ).one()
    return {"due": int(row[0]), "late": int(row[1]), "failed": int(row[2])}
