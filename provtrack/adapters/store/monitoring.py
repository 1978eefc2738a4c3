"""What monitoring reads from the database: is it reachable and migrated, do workers keep up, and
how many orders, jobs, undelivered events and open escalations there are (api/monitoring.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, text

from provtrack.adapters.store import jobs
from provtrack.adapters.store.escalation import escalation
from provtrack.adapters.store.event_tables import event_dead_letter
from provtrack.adapters.store.migrate import alembic_config
from provtrack.adapters.store.tables import service_order


@cache
def migration_head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migration_current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@dataclass
class Figures:
    orders_by_state: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)  # due, late, failed
    dead_letters: int = 0  # events not delivered within the retry horizon, not replayed since
    escalations: dict[str, int] = field(default_factory=dict)  # open, acknowledged


def figures(engine: Engine, *, now: datetime, late_after: timedelta) -> Figures:
    with engine.connect() as conn:
        states = conn.execute(
            select(service_order.c.state, func.count()).group_by(service_order.c.state)
        ).all()
        undelivered = conn.execute(
            select(func.count())
            .select_from(event_dead_letter)
            .where(event_dead_letter.c.delivered_at.is_(None))
        ).scalar_one()
        acknowledged = escalation.c.acknowledged_at.is_not(None)
        open_, done = conn.execute(
            select(func.count().filter(~acknowledged), func.count().filter(acknowledged)).select_from(
                escalation
            )
        ).one()
        counts = jobs.counts(conn, now=now, late_after=late_after)
    return Figures(
        orders_by_state={str(state): int(count) for state, count in states},
        jobs=counts,
        dead_letters=int(undelivered),
        escalations={"open": int(open_), "acknowledged": int(done)},
    )
