"""The short form of the chaos test (tests/e2e/chaos.py): orders placed while `serve` and `worker`
are each killed five times with SIGKILL at random moments and started again, on SQLite and
PostgreSQL (under a minute each); nothing lost, nothing doubled, no event missing. It prints its
figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from provtrack.adapters.store.repository import SqlStore
from tests.e2e.chaos import Chaos

pytestmark = pytest.mark.timeout(150)


def test_orders_survive_sigkills_of_serve_and_worker_without_loss_or_duplicates(
    store: SqlStore, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = Chaos(database_url, tmp_path, kills=6, seed=7, rate=6).run()

    with capsys.disabled():
        print(f"\n{figures.line()} [{database_url.split(':', maxsplit=1)[0]}]")
    assert figures.orders >= 10  # a loaded machine places fewer; the zeros below are the point
    assert figures.kills == {"serve": 3, "worker": 3}
    assert figures.activities == 2 * figures.orders
    assert (figures.lost, figures.duplicated, figures.unfinished) == (0, 0, 0)
    assert (figures.duplicate_resource_orders, figures.missing_resource_orders) == (0, 0)
    assert figures.gaps == 0
