"""Events in SQL, the delivery side: hub subscriptions, delivery streams, dead letters and their replay.

Writing events (the outbox, routing to streams) is `outbox.py`; the functions the order
transactions call are re-exported here. Statements on the job table are `jobs.py`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, case, delete, func, insert, or_, select, update

from provtrack.adapters.store import jobs, outbox
from provtrack.adapters.store.event_tables import (
    event_dead_letter,
    event_stream,
    event_subscription,
    outbox_event,
)
from provtrack.adapters.store.outbox import (
    OrderEvents,
    archive_order_version,
    record_task_events,
    take_order_events,
    write_order_events,
)
from provtrack.domain.clock import parse_datetime
from provtrack.domain.events import (
    DELIVER_JOB,
    REDELIVER_JOB,
    DeadLetter,
    DeliverTo,
    StoredEvent,
    Stream,
    Subscription,
    stream_key,
)

__all__ = [
    "OrderEvents",
    "SqlEventsTransaction",
    "archive_order_version",
    "record_task_events",
    "take_order_events",
    "write_order_events",
]


class SqlEventsTransaction:
    """Subscriptions, streams, dead letters and history, on the connection of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # subscriptions

    def add_subscription(self, subscription: Subscription) -> None:
        self.conn.execute(insert(event_subscription).values(**_subscription_row(subscription)))

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = self.conn.execute(
            select(event_subscription).where(event_subscription.c.id == subscription_id)
        ).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["deliver_to"] = DeliverTo(values["deliver_to"])
        values["client"] = values.pop("client_id")
        return Subscription(**values)

    def pause_subscription(self, subscription_id: str, *, until: str, failed: bool = True) -> None:
        """Hold the subscriber's streams until `until` (a pause is extended, never shortened)."""
        paused = event_subscription.c.paused_until
        self.conn.execute(
            update(event_subscription)
            .where(event_subscription.c.id == subscription_id)
            .values(
                paused_until=case((or_(paused.is_(None), paused < until), until), else_=paused),
                failures=event_subscription.c.failures + (1 if failed else 0),
            )
        )

    def resume_subscription(self, subscription_id: str, *, now: str) -> None:
        """A delivery succeeded: if the subscriber was paused, clear that and wake its parked streams
        and replays (and those parking right now: still leased, they then run again)."""
        resumed = self.conn.execute(
            update(event_subscription)
            .where(
                event_subscription.c.id == subscription_id,
                or_(event_subscription.c.paused_until.is_not(None), event_subscription.c.failures > 0),
            )
            .values(paused_until=None, failures=0)
        ).rowcount
        if resumed:
            at = parse_datetime(now)
            jobs.run_now(self.conn, DELIVER_JOB, now=at, key_prefix=f"{subscription_id}/")
            jobs.run_now(self.conn, REDELIVER_JOB, now=at, key=subscription_id)

    def park_stream(self, subscription_id: str, order_id: str, *, until: str, now: str) -> bool:
        """Move the stream's job to `until` if its subscriber is still paused; False if it is not."""
        return self._park(DELIVER_JOB, stream_key(subscription_id, order_id), subscription_id, until, now)

    def park_replay(self, subscription_id: str, *, until: str, now: str) -> bool:
        """Move the subscription's replay job to `until` if it is still paused; False if it is not."""
        return self._park(REDELIVER_JOB, subscription_id, subscription_id, until, now)

    def _park(self, kind: str, key: str, subscription_id: str, until: str, now: str) -> bool:
        still_paused = (
            select(event_subscription.c.id)
            .where(event_subscription.c.id == subscription_id, event_subscription.c.paused_until > now)
            .exists()
        )
        return jobs.move_if(self.conn, kind, key, due_at=parse_datetime(until), condition=still_paused)

    def disable_subscription(self, subscription_id: str, *, reason: str) -> None:
        self.conn.execute(
            update(event_subscription)
            .where(event_subscription.c.id == subscription_id)
            .values(state="disabled", disabled_reason=reason)
        )

    def save_subscription(self, subscription: Subscription) -> None:
        self.conn.execute(
            update(event_subscription)
            .where(event_subscription.c.id == subscription.id)
            .values(**_subscription_row(subscription))
        )

    def list_subscriptions(self) -> list[Subscription]:
        ids = self.conn.execute(select(event_subscription.c.id).order_by(event_subscription.c.created_at))
        return [s for i in ids.scalars() if (s := self.get_subscription(i)) is not None]

    def delete_subscription(self, subscription_id: str) -> bool:
        """Forget the subscription, its streams and jobs; its dead letters stay, no longer queued."""
        deleted = self.conn.execute(
            delete(event_subscription).where(event_subscription.c.id == subscription_id)
        ).rowcount
        self.conn.execute(delete(event_stream).where(event_stream.c.subscription_id == subscription_id))
        jobs.cancel_prefix(self.conn, DELIVER_JOB, f"{subscription_id}/")
        jobs.cancel(self.conn, REDELIVER_JOB, subscription_id)
        self.conn.execute(
            update(event_dead_letter)
            .where(event_dead_letter.c.subscription_id == subscription_id, _queued())
            .values(replayed_at=None)
        )
        return bool(deleted)

    def last_event_id(self) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(outbox_event.c.id), 0))).scalar_one())

    # streams

    def get_stream(self, subscription: Subscription, order_id: str) -> Stream:
        row = self.conn.execute(
            select(event_stream).where(
                event_stream.c.subscription_id == subscription.id,
                event_stream.c.service_order_id == order_id,
            )
        ).first()
        if row is None:
            return Stream(subscription.id, order_id, subscription.after_event)
        return Stream(**dict(row._mapping), exists=True)

    def save_stream(self, stream: Stream) -> None:
        values = {
            "delivered_through": stream.delivered_through,
            "attempts": stream.attempts,
            "failing_since": stream.failing_since,
            "last_error": stream.last_error,
        }
        if stream.exists:
            self.conn.execute(
                update(event_stream)
                .where(
                    event_stream.c.subscription_id == stream.subscription_id,
                    event_stream.c.service_order_id == stream.service_order_id,
                )
                .values(**values)
            )
        else:
            self.conn.execute(
                insert(event_stream).values(
                    subscription_id=stream.subscription_id,
                    service_order_id=stream.service_order_id,
                    **values,
                )
            )
            stream.exists = True

    def events_after(self, order_id: str, after: int, *, limit: int) -> list[StoredEvent]:
        rows = self.conn.execute(
            select(outbox_event)
            .where(outbox_event.c.service_order_id == order_id, outbox_event.c.id > after)
            .order_by(outbox_event.c.id)
            .limit(limit)
        ).all()
        return [self._stored(r) for r in rows]

    def get_event(self, outbox_id: int) -> StoredEvent | None:
        return self.get_events([outbox_id]).get(outbox_id)

    def get_events(self, outbox_ids: Sequence[int]) -> dict[int, StoredEvent]:
        rows = self.conn.execute(select(outbox_event).where(outbox_event.c.id.in_(list(outbox_ids)))).all()
        return {r.id: self._stored(r) for r in rows}

    def _stored(self, row: Any) -> StoredEvent:
        if row.document is not None:
            document = orjson.loads(row.document)
        else:
            text_document = self.order_version_json(row.service_order_id, row.order_version)
            document = None if text_document is None else orjson.loads(text_document)
        return StoredEvent(
            row.id, row.event_id, row.service_order_id, row.event_type, row.event_time, document
        )

    def order_version_json(self, order_id: str, version: int) -> str | None:
        return outbox.order_version_json(self.conn, order_id, version)

    # dead letters

    def add_dead_letter(
        self, stream: Stream, event: StoredEvent, *, now: str, attempts: int, error: str
    ) -> None:
        self.conn.execute(
            insert(event_dead_letter).values(
                subscription_id=stream.subscription_id,
                outbox_id=event.id,
                event_id=event.event_id,
                service_order_id=event.service_order_id,
                event_type=event.event_type,
                dead_at=now,
                attempts=attempts,
                last_error=error[:2000],
            )
        )

    def dead_letters(
        self, *, subscription_id: str | None = None, pending_only: bool = False
    ) -> list[DeadLetter]:
        stmt = select(event_dead_letter).order_by(event_dead_letter.c.id)
        if subscription_id is not None:
            stmt = stmt.where(event_dead_letter.c.subscription_id == subscription_id)
        if pending_only:
            stmt = stmt.where(event_dead_letter.c.delivered_at.is_(None))
        return [DeadLetter(**dict(r._mapping)) for r in self.conn.execute(stmt)]

    def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        found = self.get_dead_letters([dead_letter_id])
        return found[0] if found else None

    def get_dead_letters(self, dead_letter_ids: Sequence[int]) -> list[DeadLetter]:
        """The dead letters with these ids that exist, in id order."""
        rows = self.conn.execute(
            select(event_dead_letter)
            .where(event_dead_letter.c.id.in_(list(dead_letter_ids)))
            .order_by(event_dead_letter.c.id)
        )
        return [DeadLetter(**dict(r._mapping)) for r in rows]

    def update_dead_letter(self, dead_letter_id: int, **values: Any) -> None:
        self.conn.execute(
            update(event_dead_letter).where(event_dead_letter.c.id == dead_letter_id).values(**values)
        )

    def queue_replays(self, dead_letter_ids: Sequence[int], *, now: str) -> None:
        """Mark undelivered dead letters as queued for replay since `now`."""
        self.conn.execute(
            update(event_dead_letter)
            .where(
                event_dead_letter.c.id.in_(list(dead_letter_ids)), event_dead_letter.c.delivered_at.is_(None)
            )
            .values(replayed_at=now)
        )

    def queued_replays(self, subscription_id: str, *, limit: int) -> list[DeadLetter]:
        """The subscription's dead letters queued for replay, oldest first."""
        rows = self.conn.execute(
            select(event_dead_letter)
            .where(event_dead_letter.c.subscription_id == subscription_id, _queued())
            .order_by(event_dead_letter.c.id)
            .limit(limit)
        )
        return [DeadLetter(**dict(r._mapping)) for r in rows]

    def unqueue_replays(self, subscription_id: str, *, error: str) -> None:
        """Every replay queued for the subscription stays dead, with `error`."""
        self.conn.execute(
            update(event_dead_letter)
            .where(event_dead_letter.c.subscription_id == subscription_id, _queued())
            .values(replayed_at=None, last_error=error[:2000])
        )

    # history and retention

    def order_as_of(self, order_id: str, at: str) -> tuple[str | None, str | None]:
        """(document valid at `at`, or None; and when the order began, or None if never seen)."""
        return outbox.order_as_of(self.conn, order_id, at)

    def prune_delivered(self, *, before: str, limit: int) -> int:
        """Delete up to `limit` delivered outbox rows older than `before` (outbox.prune_delivered)."""
        return outbox.prune_delivered(self.conn, before=before, limit=limit)


def _queued() -> Any:
    return event_dead_letter.c.replayed_at.is_not(None) & event_dead_letter.c.delivered_at.is_(None)


def _subscription_row(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "callback": subscription.callback,
        "query": subscription.query,
        "deliver_to": subscription.deliver_to.value,
        "secret": subscription.secret,
        "previous_secret": subscription.previous_secret,
        "previous_secret_until": subscription.previous_secret_until,
        "state": subscription.state,
        "disabled_reason": subscription.disabled_reason,
        "created_at": subscription.created_at,
        "after_event": subscription.after_event,
        "paused_until": subscription.paused_until,
        "failures": subscription.failures,
        "client_id": subscription.client,
    }
