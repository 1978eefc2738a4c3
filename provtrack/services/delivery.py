"""Delivery of events, run by the worker: a (subscription, order) stream, a subscription's replays,
and the pruning of delivered events.

A stream's job posts its undelivered events in outbox order and moves the stream's cursor after
each one, so a crash re-sends at most the event in flight (at least once, in order). A replay job
posts the dead letters an operator queued for one subscription, oldest first, one at a time. Both go
through the same sender, slots and pause: a failed attempt backs off and pauses the whole
subscription, so a dead subscriber costs one attempt per backoff, not one per order or letter; and
each run posts at most `config.batch` before it yields its thread to the jobs due meanwhile.

What each outcome of an attempt does is one small function per outcome, in a table.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from provtrack.domain.clock import format_datetime, parse_datetime
from provtrack.domain.events import (
    PARK_LIMIT,
    PRUNE_JOB,
    PRUNE_KEY,
    DeadLetter,
    StoredEvent,
    Stream,
    Subscription,
    envelope,
    parked_until,
    parse_event_filter,
    target_url,
)
from provtrack.domain.jobs import Job, JobRequest, RetryLater, backoff
from provtrack.domain.webhooks import Attempt, Outcome, signature_headers
from provtrack.services.events import EventsConfig, Sender, Store, signing_secrets

BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_CAP = timedelta(hours=1)
BUSY_RETRY = timedelta(milliseconds=200)  # a healthy subscriber's delivery slots were all taken
# Replays delivered are recorded this many at a time: one write per letter was most of a replay's
# time on PostgreSQL. A crash re-sends at most these (with the same webhook-id).
REPLAYS_PER_WRITE = 20


@dataclass(slots=True)
class _Run:
    """One run of a delivery job: the subscription it posts to, at the moment it runs."""

    store: Store
    sender: Sender
    config: EventsConfig
    now: datetime
    subscription: Subscription
    full: bool  # it read a whole batch: more may be waiting

    @property
    def stamp(self) -> str:
        return format_datetime(self.now)

    def post(self, event: StoredEvent, body: bytes) -> Attempt:
        subscription = self.subscription
        headers = signature_headers(signing_secrets(subscription, self.now), event.event_id, self.now, body)
        url = target_url(subscription.callback, subscription.deliver_to, event.event_type)
        return self.sender.post(
            url,
            body,
            headers,
            subscriber=subscription.id,
            probing=subscription.failures > 0,
            policy=self.config.policy,
        )

    @property
    def paused(self) -> bool:
        until = self.subscription.paused_until
        return until is not None and parse_datetime(until) > self.now


# --- a (subscription, order) stream ------------------------------------------------------------


@dataclass(slots=True)
class _StreamRun(_Run):
    stream: Stream
    selected: list[tuple[StoredEvent, bytes]]  # the pending events its filter selects, with bodies
    last: int  # outbox id of the last pending event read: the cursor passes unselected ones too

    def rest(self, position: int) -> list[StoredEvent]:
        return [event for event, _ in self.selected[position:]]


def deliver_stream(store: Store, sender: Sender, config: EventsConfig, job: Job, now: datetime) -> None:
    """Post a stream's pending events in order; stop at the first failure and back off."""
    run = _open_stream(store, sender, config, job, now)
    if run is None:
        return
    if run.paused:
        _park_stream(run, run.rest(0))
        return
    for position, (event, body) in enumerate(run.selected):
        attempt = run.post(event, body)
        if not _ON_STREAM_OUTCOME[attempt.outcome](run, position, attempt):
            return
    if run.stream.delivered_through != run.last:  # the rest were not selected by the filter
        run.stream.delivered_through = run.last
        _save_stream(run)
    if run.full:
        raise RetryLater("more events are waiting in this stream", delay=timedelta(0))


def _open_stream(
    store: Store, sender: Sender, config: EventsConfig, job: Job, now: datetime
) -> _StreamRun | None:
    subscription_id, order_id = job.payload["subscription"], job.payload["order"]
    with store.transaction(write=False) as tx:
        subscription = tx.events.get_subscription(subscription_id)
        if subscription is None or subscription.state != "active":
            return None
        stream = tx.events.get_stream(subscription, order_id)
        pending = tx.events.events_after(order_id, stream.delivered_through, limit=config.batch)
    if not pending:
        return None
    event_filter = parse_event_filter(subscription.query)
    selected = []
    for event in pending:
        built = _envelope(event, config)
        if built is not None and event_filter.matches(built):
            selected.append((event, orjson.dumps(built)))
    full = len(pending) == config.batch
    return _StreamRun(store, sender, config, now, subscription, full, stream, selected, pending[-1].id)


def _stream_delivered(run: _StreamRun, position: int, _attempt: Attempt) -> bool:
    stream = run.stream
    stream.delivered_through = run.selected[position][0].id
    stream.attempts, stream.failing_since, stream.last_error = 0, None, None
    with run.store.transaction(write=True) as tx:
        tx.events.save_stream(stream)
        tx.events.resume_subscription(run.subscription.id, now=run.stamp)
    return True


def _stream_refused(run: _StreamRun, position: int, attempt: Attempt) -> bool:
    run.stream.failing_since = None  # it answered: reachable, only this event is refused
    _dead_letter(run, run.rest(position)[:1], error=attempt.describe(), sent_now=attempt.sent)
    return True


def _stream_gone(run: _StreamRun, _position: int, _attempt: Attempt) -> bool:
    with run.store.transaction(write=True) as tx:
        tx.events.save_stream(run.stream)
        tx.events.disable_subscription(
            run.subscription.id, reason=f"the callback answered 410 Gone at {run.stamp}"
        )
    return False


def _stream_busy(run: _StreamRun, position: int, attempt: Attempt) -> bool:
    if not attempt.stalled:
        if position:  # some were delivered in this run
            _save_stream(run)
        raise RetryLater(attempt.describe(), delay=BUSY_RETRY + _jitter(BUSY_RETRY))
    # Its earlier deliveries hang: hold its streams until they end (success wakes them).
    until = run.now + run.config.busy_delay
    _pause(run, until=until, failed=False, stream=run.stream)
    _park_stream(run, run.rest(position), busy_until=until)
    return False


def _stream_blocked(run: _StreamRun, position: int, attempt: Attempt) -> bool:
    # Not sent: its host resolves to an address the policy refuses. That holds for all its streams.
    run.stream.last_error = attempt.describe()
    _pause(run, until=run.now + PARK_LIMIT, failed=True, stream=run.stream)
    _park_stream(run, run.rest(position))
    return False


def _stream_failed(run: _StreamRun, position: int, attempt: Attempt) -> bool:
    stream = run.stream
    failing_since = parse_datetime(stream.failing_since) if stream.failing_since else run.now
    if run.now - failing_since >= run.config.horizon:
        # Failing for longer than the horizon: this event and the rest of the batch are dead.
        _dead_letter(run, run.rest(position), error=attempt.describe(), sent_now=attempt.sent, last=run.last)
        return False
    # The subscriber pauses as long as its longest-waiting failed stream: when the others come due
    # they find it paused and park, so a dead subscriber gets about one attempt per backoff.
    delay = backoff(stream.attempts, base=BACKOFF_BASE, cap=BACKOFF_CAP)
    stream.attempts += 1
    stream.failing_since = format_datetime(failing_since)
    stream.last_error = attempt.describe()
    _pause(run, until=run.now + delay, failed=True, stream=stream)
    raise RetryLater(f"delivery to {run.subscription.callback} failed: {attempt.describe()}", delay=delay)


_ON_STREAM_OUTCOME: dict[Outcome, Callable[[_StreamRun, int, Attempt], bool]] = {
    Outcome.DELIVERED: _stream_delivered,
    Outcome.REFUSED: _stream_refused,
    Outcome.GONE: _stream_gone,
    Outcome.BUSY: _stream_busy,
    Outcome.BLOCKED: _stream_blocked,
    Outcome.RETRY: _stream_failed,
}


def _park_stream(run: _StreamRun, selected: list[StoredEvent], *, busy_until: datetime | None = None) -> None:
    """The subscriber is failing: wait for a delivery to it to succeed (that wakes every parked stream),
    at most PARK_LIMIT (only until `busy_until`, or its pause's end, when it is busy, not failing:
    `parked_until`), and dead-letter without an attempt once the horizon has passed."""
    stream = run.stream
    if stream.failing_since is None:
        stream.failing_since = run.stamp
    elapsed = run.now - parse_datetime(stream.failing_since)
    if elapsed >= run.config.horizon:
        if selected:
            error = f"the subscriber kept failing since {stream.failing_since}"
            if stream.last_error:
                error = f"{error}: {stream.last_error}"
            _dead_letter(run, selected, error=error, sent_now=False, last=run.last)
        return
    subscription = run.subscription
    if busy_until is not None:
        wakes = busy_until
    elif subscription.paused_until is not None:
        wakes = parked_until(run.now, subscription.paused_until, subscription.failures)
    else:
        wakes = run.now + PARK_LIMIT
    delay = min(wakes - run.now, run.config.horizon - elapsed)
    # Moved in the same statement that checks the pause, not by RetryLater after the handler: a
    # success that wakes the subscriber's streams meanwhile must not be overwritten.
    with run.store.transaction(write=True) as tx:
        tx.events.save_stream(stream)
        parked = tx.events.park_stream(
            stream.subscription_id,
            stream.service_order_id,
            until=format_datetime(run.now + delay + _jitter(delay)),
            now=run.stamp,
        )
    if not parked:
        raise RetryLater("the subscriber answered again meanwhile", delay=timedelta(0))


def _dead_letter(
    run: _StreamRun, events: Sequence[StoredEvent], *, error: str, sent_now: bool, last: int | None = None
) -> None:
    """Dead-letter `events`; the first has been sent `stream.attempts` times (and once more now if
    `sent_now`), the others never: a dead letter counts only the POSTs that went out."""
    stream = run.stream
    with run.store.transaction(write=True) as tx:
        for position, event in enumerate(events):
            attempts = stream.attempts + sent_now if position == 0 else 0
            tx.events.add_dead_letter(stream, event, now=run.stamp, attempts=attempts, error=error)
        stream.delivered_through = last if last is not None else events[-1].id
        stream.attempts, stream.last_error = 0, None
        tx.events.save_stream(stream)


def _save_stream(run: _StreamRun) -> None:
    with run.store.transaction(write=True) as tx:
        tx.events.save_stream(run.stream)


def _pause(run: _Run, *, until: datetime, failed: bool, stream: Stream | None = None) -> None:
    with run.store.transaction(write=True) as tx:
        if stream is not None:
            tx.events.save_stream(stream)
        tx.events.pause_subscription(run.subscription.id, until=format_datetime(until), failed=failed)


# --- a subscription's replays ------------------------------------------------------------------


@dataclass(slots=True)
class _ReplayRun(_Run):
    letters: list[tuple[DeadLetter, StoredEvent | None]]  # queued, oldest first; None: event gone
    delivered: list[DeadLetter] = field(default_factory=list)  # not recorded yet


def deliver_replays(store: Store, sender: Sender, config: EventsConfig, job: Job, now: datetime) -> None:
    """Post a subscription's dead letters queued for replay, oldest first, a batch per run."""
    subscription_id = job.key
    with store.transaction(write=False) as tx:
        subscription = tx.events.get_subscription(subscription_id)
        queued = tx.events.queued_replays(subscription_id, limit=config.batch)
        events = tx.events.get_events([letter.outbox_id for letter in queued]) if queued else {}
    if not queued:
        return
    if subscription is None or subscription.state != "active":
        reason = "disabled" if subscription is not None else "deleted"
        with store.transaction(write=True) as tx:
            tx.events.unqueue_replays(subscription_id, error=f"not replayed: the subscription was {reason}")
        return
    letters = [(letter, events.get(letter.outbox_id)) for letter in queued]
    run = _ReplayRun(store, sender, config, now, subscription, len(queued) == config.batch, letters)
    if run.paused:
        _park_replays(run)
        return
    for position, (letter, event) in enumerate(letters):
        built = None if event is None else _envelope(event, config)
        if event is None or built is None:
            _update_letter(run, letter, error="not replayed: the event is no longer stored", sent=False)
            continue
        attempt = run.post(event, orjson.dumps(built))
        if attempt.outcome != Outcome.DELIVERED:
            _record_delivered(run)  # before whatever this outcome writes or raises
        if not _ON_REPLAY_OUTCOME[attempt.outcome](run, position, attempt):
            return
    _record_delivered(run)
    if run.full:
        raise RetryLater("more dead letters are queued for replay", delay=timedelta(0))


def _replay_delivered(run: _ReplayRun, position: int, _attempt: Attempt) -> bool:
    run.delivered.append(run.letters[position][0])
    # At once after failures: the success resumes the subscriber and wakes its parked streams.
    if len(run.delivered) >= REPLAYS_PER_WRITE or run.subscription.failures or run.subscription.paused_until:
        _record_delivered(run)
    return True


def _record_delivered(run: _ReplayRun) -> None:
    if not run.delivered:
        return
    with run.store.transaction(write=True) as tx:
        for letter in run.delivered:
            tx.events.update_dead_letter(letter.id, delivered_at=run.stamp, attempts=letter.attempts + 1)
        tx.events.resume_subscription(run.subscription.id, now=run.stamp)
    run.delivered.clear()
    run.subscription.failures, run.subscription.paused_until = 0, None  # as resumed


def _replay_refused(run: _ReplayRun, position: int, attempt: Attempt) -> bool:
    _update_letter(run, run.letters[position][0], error=attempt.describe(), sent=attempt.sent)
    return True


def _replay_gone(run: _ReplayRun, position: int, attempt: Attempt) -> bool:
    _update_letter(run, run.letters[position][0], error=attempt.describe(), sent=attempt.sent)
    with run.store.transaction(write=True) as tx:
        tx.events.disable_subscription(
            run.subscription.id, reason=f"the callback answered 410 Gone at {run.stamp}"
        )
        tx.events.unqueue_replays(run.subscription.id, error="not replayed: the callback answered 410 Gone")
    return False


def _replay_busy(run: _ReplayRun, _position: int, attempt: Attempt) -> bool:
    if not attempt.stalled:
        raise RetryLater(attempt.describe(), delay=BUSY_RETRY + _jitter(BUSY_RETRY))
    _pause(run, until=run.now + run.config.busy_delay, failed=False)
    _park_replays(run)
    return False


def _replay_blocked(run: _ReplayRun, position: int, attempt: Attempt) -> bool:
    _update_letter(run, run.letters[position][0], error=attempt.describe(), sent=attempt.sent, unqueue=False)
    _pause(run, until=run.now + PARK_LIMIT, failed=True)
    _park_replays(run)
    return False


def _replay_failed(run: _ReplayRun, position: int, attempt: Attempt) -> bool:
    letter = run.letters[position][0]
    _update_letter(run, letter, error=attempt.describe(), sent=attempt.sent, unqueue=False)
    if _replay_expired(run, attempt.describe()):
        return False
    delay = backoff(run.subscription.failures, base=BACKOFF_BASE, cap=BACKOFF_CAP)
    _pause(run, until=run.now + delay, failed=True)
    raise RetryLater(f"replay to {run.subscription.callback} failed: {attempt.describe()}", delay=delay)


_ON_REPLAY_OUTCOME: dict[Outcome, Callable[[_ReplayRun, int, Attempt], bool]] = {
    Outcome.DELIVERED: _replay_delivered,
    Outcome.REFUSED: _replay_refused,
    Outcome.GONE: _replay_gone,
    Outcome.BUSY: _replay_busy,
    Outcome.BLOCKED: _replay_blocked,
    Outcome.RETRY: _replay_failed,
}


def _replay_expired(run: _ReplayRun, error: str) -> bool:
    """Queued for longer than the horizon: the letters stay dead (replayable again). True if so."""
    since = run.letters[0][0].replayed_at or run.stamp
    if run.now - parse_datetime(since) < run.config.horizon:
        return False
    with run.store.transaction(write=True) as tx:
        tx.events.unqueue_replays(
            run.subscription.id, error=f"not replayed within the retry horizon (queued {since}): {error}"
        )
    return True


def _park_replays(run: _ReplayRun) -> None:
    """Wait, as the subscriber's streams do, until a delivery to it succeeds (at most PARK_LIMIT)."""
    if _replay_expired(run, run.letters[0][0].last_error):
        return
    with run.store.transaction(write=True) as tx:
        parked = tx.events.park_replay(
            run.subscription.id,
            until=format_datetime(run.now + PARK_LIMIT + _jitter(PARK_LIMIT)),
            now=run.stamp,
        )
    if not parked:
        raise RetryLater("the subscriber answered again meanwhile", delay=timedelta(0))


def _update_letter(
    run: _ReplayRun, letter: DeadLetter, *, error: str, sent: bool, unqueue: bool = True
) -> None:
    """Record a replay that did not deliver; unqueued, it stays dead (and replayable)."""
    values: dict[str, object] = {
        "attempts": letter.attempts + sent,
        "last_error": f"replay at {run.stamp}: {error}",
    }
    if unqueue:
        values["replayed_at"] = None
    with run.store.transaction(write=True) as tx:
        tx.events.update_dead_letter(letter.id, **values)


# --- pruning -----------------------------------------------------------------------------------


def schedule_pruning(store: Store, *, now: datetime) -> None:
    """Ask for the prune job unless it exists (it reschedules itself): once when a worker starts."""
    with store.transaction(write=True) as tx:
        tx.schedule_job(JobRequest(PRUNE_JOB, PRUNE_KEY, now), now=now, replace=False)


def prune_outbox(store: Store, config: EventsConfig, _job: Job, now: datetime) -> None:
    """Delete delivered outbox rows older than the retention, a batch at a time; then come back
    after `prune_every`."""
    before = format_datetime(now - config.retention)
    with store.transaction(write=True) as tx:
        pruned = tx.events.prune_delivered(before=before, limit=config.prune_batch)
        if pruned < config.prune_batch:
            tx.schedule_job(JobRequest(PRUNE_JOB, PRUNE_KEY, now + config.prune_every), now=now)
    if pruned == config.prune_batch:
        raise RetryLater(
            f"pruned {pruned} delivered events; more are older than the retention", delay=timedelta(0)
        )


# --- helpers -----------------------------------------------------------------------------------


def _envelope(event: StoredEvent, config: EventsConfig) -> dict[str, object] | None:
    if event.document is None:
        return None
    return envelope(
        event_id=event.event_id,
        event_type=event.event_type,
        event_time=event.event_time,
        correlation_id=event.service_order_id,
        document=event.document,
        base_url=config.base_url,
    )


def _jitter(delay: timedelta) -> timedelta:
    return timedelta(seconds=random.uniform(0, min(1.0, delay.total_seconds() * 0.2)))
