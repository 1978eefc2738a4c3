"""The worker: claims due jobs under a lease and runs the handler registered for each kind.

`run_due` is one round (tests drive it with an injected clock); `serve` loops until stopped, waking
at once when a transaction commits a job (in-process event, PostgreSQL NOTIFY from other processes)
and otherwise at the next due time, with `poll_interval` as the fallback.
"""

from __future__ import annotations

import threading
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import structlog
from prometheus_client import Counter

from provtrack.domain.jobs import GiveUp, Job, RetryLater, backoff

Handler = Callable[[Job, datetime], None]  # the one shape of a job handler: the job, and the time it runs at


class JobHandlers(Protocol):
    """A feature's job kinds and their handlers, registered with the worker at assembly."""

    def handlers(self) -> Mapping[str, Handler]: ...


@runtime_checkable
class Closeable(Protocol):
    """A feature (or a client a feature was given) holding connections: closed when its worker stops."""

    def close(self) -> None: ...


JOBS_RUN = Counter("provtrack_jobs_total", "Jobs run by the worker, by kind and outcome", ["kind", "outcome"])
log = structlog.get_logger("provtrack.worker")


class JobStore(Protocol):
    jobs_committed: threading.Event

    def claim_due_jobs(
        self, *, now: datetime, owner: str, lease: timedelta, limit: int, finished: Sequence[Job] = ()
    ) -> list[Job]: ...
    def finish_job(self, job: Job, *, owner: str) -> None: ...
    def finish_jobs(self, finished: Sequence[Job], *, owner: str) -> None: ...
    def retry_job(self, job: Job, *, owner: str, due_at: datetime, error: str) -> None: ...
    def give_up_job(self, job: Job, *, owner: str, now: datetime, error: str) -> None: ...
    def next_job_due(self) -> datetime | None: ...


class Worker:
    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, Handler],
        *,
        clock: Callable[[], datetime],
        owner: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 32,
        threads: int = 8,
        poll_interval: timedelta = timedelta(seconds=1),
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.clock = clock
        self.owner = owner or f"worker-{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.batch = batch
        self.poll_interval = poll_interval
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="provtrack-job")
        self._running = 0
        self._running_lock = threading.Lock()
        # Jobs `serve` ran to the end, deleted in its next claim's transaction (one write, not two).
        self._finished: list[Job] = []
        self.stopping = threading.Event()

    def run_due(self) -> int:
        """Claim the jobs due now and run them to the end; return how many ran."""
        now = self.clock()
        claimed = self.store.claim_due_jobs(now=now, owner=self.owner, lease=self.lease, limit=self.batch)
        if len(claimed) == 1:
            self._run(claimed[0])
        else:
            list(self._pool.map(self._run, claimed))
        return len(claimed)

    def run_until_idle(self, *, max_rounds: int = 1000) -> int:
        """Run rounds until nothing is due now (the clock does not move); return jobs run."""
        total = 0
        for _ in range(max_rounds):
            ran = self.run_due()
            if not ran:
                return total
            total += ran
        raise RuntimeError(f"jobs still due after {max_rounds} rounds: a job reschedules itself at once")

    def serve(self) -> None:
        """Run until `stop()`; never raises for a failed job (it is recorded and retried).

        Unlike `run_due`, jobs are claimed as threads come free, not in rounds: a job that takes long
        (a webhook to a subscriber that never answers, a slow downstream system) holds one thread, not
        every job claimed beside it.
        """
        log.info("worker started", owner=self.owner, handlers=sorted(self.handlers))
        while not self.stopping.is_set():
            self.store.jobs_committed.clear()
            with self._running_lock:
                free = self.threads - self._running
                finished, self._finished = self._finished, []
            try:
                if free > 0 or finished:
                    claimed = self.store.claim_due_jobs(
                        now=self.clock(),
                        owner=self.owner,
                        lease=self.lease,
                        limit=min(free, self.batch),
                        finished=finished,
                    )
                    finished = []
                    for job in claimed:
                        self._submit(job)
                    if claimed:
                        continue
                wait = self._until_next_due() if free > 0 else self.poll_interval.total_seconds()
            except Exception:
                log.exception("worker round failed; retrying after the poll interval")
                with self._running_lock:
                    self._finished.extend(finished)
                wait = self.poll_interval.total_seconds()
            self.store.jobs_committed.wait(wait)  # also set when a running job ends
        log.info("worker stopped", owner=self.owner)

    def _submit(self, job: Job) -> None:
        with self._running_lock:
            self._running += 1

        def ended(_future: object) -> None:
            with self._running_lock:
                self._running -= 1
            self.store.jobs_committed.set()

        self._pool.submit(self._run, job, True).add_done_callback(ended)

    def request_stop(self) -> None:
        """Ask `serve` to return; safe in a signal handler (it only sets events, takes no lock)."""
        self.stopping.set()
        self.store.jobs_committed.set()

    def stop(self) -> None:
        """Stop and wait for running jobs. Not from a signal handler: the interrupted thread may hold
        the store's write lock that a running job waits for."""
        self.request_stop()
        self._pool.shutdown(wait=True)
        with self._running_lock:
            finished, self._finished = self._finished, []
        if finished:
            self.store.finish_jobs(finished, owner=self.owner)

    def _until_next_due(self) -> float:
        next_due = self.store.next_job_due()
        fallback = self.poll_interval.total_seconds()
        if next_due is None:
            return fallback
        return max(0.0, min(fallback, (next_due - self.clock()).total_seconds()))

    def _run(self, job: Job, defer_finish: bool = False) -> None:
        handler = self.handlers.get(job.kind)
        now = self.clock()
        if handler is None:
            self.store.give_up_job(
                job, owner=self.owner, now=now, error=f"no handler for job kind {job.kind!r}"
            )
            JOBS_RUN.labels(job.kind, "unknown").inc()
            return
        try:
            handler(job, now)
        except RetryLater as exc:
            delay = exc.delay if exc.delay is not None else backoff(job.attempts)
            self.store.retry_job(job, owner=self.owner, due_at=now + delay, error=str(exc))
            JOBS_RUN.labels(job.kind, "retry").inc()
        except GiveUp as exc:
            self.store.give_up_job(job, owner=self.owner, now=now, error=str(exc))
            JOBS_RUN.labels(job.kind, "failed").inc()
            log.warning("job failed for good", kind=job.kind, key=job.key, error=str(exc))
        except Exception as exc:
            error = "".join(traceback.format_exception_only(exc)).strip()
            self.store.retry_job(job, owner=self.owner, due_at=now + backoff(job.attempts), error=error)
            JOBS_RUN.labels(job.kind, "error").inc()
            log.exception("job raised; it will be retried", kind=job.kind, key=job.key)
        else:
            if defer_finish:  # a crash before the next claim re-runs it after the lease: handlers allow it
                with self._running_lock:
                    self._finished.append(job)
            else:
                self.store.finish_job(job, owner=self.owner)
            JOBS_RUN.labels(job.kind, "done").inc()
