"""The one assembly: every role gets the same store hooks and job kinds, and a long-running role
watches the policy file."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from provtrack.adapters.policy_file import DEMO_POLICY
from provtrack.bootstrap import Assembly, merge_handlers
from provtrack.domain.jobs import Job
from provtrack.engine.worker import JobHandlers
from provtrack.settings import Settings


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive()}


@pytest.fixture
def assembly(tmp_path: Path) -> Assembly:
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEMO_POLICY.read_text())
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", catalog="demo", policy=str(policy))
    return Assembly.build(settings, migrate=True)


@pytest.mark.parametrize("with_worker", [True, False], ids=["serve-or-worker", "serve-no-worker"])
def test_a_long_running_role_watches_the_policy_file(assembly: Assembly, with_worker: bool) -> None:
    try:
        with assembly.running(with_worker=with_worker) as worker:
            running = _threads()
            assert "provtrack-policy-watcher" in running
            assert ("provtrack-worker" in running) is with_worker
            assert (worker is not None) is with_worker
            # Every role asks for the hub subscriptions of the catalog's notifying systems.
            assert assembly.store.pending_jobs(kind="provisioning.subscribe") or with_worker
            assert assembly.store.pending_jobs(kind="partners.subscribe") or with_worker
        assert "provtrack-policy-watcher" not in _threads()
    finally:
        assembly.store.dispose()


def test_the_store_runs_the_features_hooks_and_the_worker_every_features_jobs(assembly: Assembly) -> None:
    try:
        # Cancellation first: jeopardy then sees an order whose cancellation has settled; jeopardy
        # before the task queues: they take the level it has just assessed.
        assert assembly.store.after_change == (
            assembly.cancellation.after_change,
            assembly.product_order_watch.after_change,
            assembly.jeopardy.after_change,
            assembly.tasks.after_change,
        )
        kinds = set(assembly.handlers())
        assert {"cancellation.start", "cancellation.withdraw", "cancellation.followWithdrawal"} <= kinds
        assert {"productOrdering.check", "productOrdering.subscribe"} <= kinds
        assert {"events.deliver", "events.redeliver", "provisioning.plan", "provisioning.dispatch"} <= kinds
        assert {"partners.dispatch", "partners.poll", "partners.subscribe"} <= kinds
        assert {"jeopardy.check", "escalation.step", "escalation.autoCancel", "escalation.notify"} <= kinds
    finally:
        assembly.store.dispose()


def test_a_worker_that_stops_closes_what_its_features_opened(
    assembly: Assembly, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    build = assembly.features

    def features(**given: Any) -> list[JobHandlers]:
        built = build(**given)
        for feature in built:
            close = feature.close  # type: ignore[attr-defined]
            monkeypatch.setattr(
                feature, "close", lambda f=feature, c=close: (closed.append(type(f).__name__), c())
            )
        return built

    monkeypatch.setattr(assembly, "features", features)
    try:
        with assembly.running(with_worker=True):
            assert closed == []  # open while the worker runs
        assert sorted(closed) == [
            "CancellationEngine",
            "EventDelivery",
            "JeopardyEngine",
            "MetricsSnapshots",
            "PartnerEngine",
            "ProductOrderingEngine",
            "ProvisioningEngine",
            "TrustMaintenance",
        ]
    finally:
        assembly.store.dispose()


def test_two_features_may_not_handle_one_job_kind() -> None:
    def handler(_job: Job, _now: datetime) -> None:
        return None

    with pytest.raises(ValueError, match=r"jeopardy\.check"):
        merge_handlers([{"jeopardy.check": handler}, {"jeopardy.check": handler}])
