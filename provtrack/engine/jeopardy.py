"""Job handlers of jeopardy monitoring and escalation: exact timers, ladder steps, auto-cancel,
and the webhook POST of a `notify` step (signed like the event hub's, docs/policy.md)."""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta
from typing import Protocol

import orjson
import structlog

from provtrack.adapters.clock import new_id
from provtrack.domain.clock import format_datetime
from provtrack.domain.jobs import GiveUp, Job, RetryLater
from provtrack.domain.webhooks import Outcome, signature_headers
from provtrack.engine.worker import Closeable, Handler
from provtrack.services import escalation, jeopardy
from provtrack.services.events import Sender
from provtrack.services.ports import Context, OrderNotFound, Store

log = structlog.get_logger("provtrack.jeopardy")
NOTIFY_HORIZON = timedelta(hours=24)  # a contact that stays unreachable this long: the job fails, visibly


class Mailer(Protocol):
    def send(self, to: str, subject: str, text: str) -> None: ...


class JeopardyEngine:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        *,
        secret: str | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self.secret = secret
        self.mailer = mailer

    def handlers(self) -> dict[str, Handler]:
        return {
            jeopardy.CHECK_JOB: self.check,
            escalation.STEP_JOB: self.check,
            jeopardy.AUTO_CANCEL_JOB: self.auto_cancel,
            escalation.NOTIFY_JOB: self.notify,
            escalation.EMAIL_JOB: self.email,
        }

    def close(self) -> None:
        """The sender is the feature's for its life (the assembly makes one for it)."""
        if isinstance(self.sender, Closeable):
            self.sender.close()

    def check(self, job: Job, now: datetime) -> None:
        order_id = job.key.partition(":")[0]  # STEP_JOB keys are <order id>:<rule>
        try:
            jeopardy.check(self.store, order_id, ctx=_ctx(now))
        except OrderNotFound:
            return  # deleted meanwhile: nothing to watch

    def auto_cancel(self, job: Job, now: datetime) -> None:
        try:
            cancelled = jeopardy.auto_cancel(
                self.store, job.key, pending_since=str(job.payload["pendingSince"]), ctx=_ctx(now)
            )
        except OrderNotFound:
            return
        log.info("pending order auto-cancel", order=job.key, cancelled=cancelled)

    def notify(self, job: Job, now: datetime) -> None:
        body = orjson.dumps(job.payload["body"])
        headers = signature_headers([self.secret], f"esc-{job.id}", now, body) if self.secret else {}
        contact = str(job.payload["contact"])
        attempt = self.sender.post(str(job.payload["url"]), body, headers, subscriber=f"contact:{contact}")
        if attempt.outcome is Outcome.DELIVERED:
            return
        if attempt.outcome in (Outcome.RETRY, Outcome.BUSY) and now - job.due_at < NOTIFY_HORIZON:
            raise RetryLater(f"escalation webhook to {contact}: {attempt.describe()}")
        raise GiveUp(f"escalation webhook to {contact} not delivered: {attempt.describe()}")

    def email(self, job: Job, now: datetime) -> None:
        if self.mailer is None:
            raise GiveUp("an escalation email was queued but SMTP is not configured (PROVTRACK_SMTP_HOST)")
        to = str(job.payload["to"])
        try:
            self.mailer.send(to, str(job.payload["subject"]), str(job.payload["text"]))
        except (OSError, smtplib.SMTPException) as exc:
            if now - job.due_at < NOTIFY_HORIZON:
                raise RetryLater(f"escalation email to {to}: {exc}") from exc
            raise GiveUp(f"escalation email to {to} not sent: {exc}") from exc


def _ctx(now: datetime) -> Context:
    return Context(now=format_datetime(now), actor=jeopardy.ACTOR, new_id=new_id)
