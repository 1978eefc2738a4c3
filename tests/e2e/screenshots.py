"""`make screenshots`: the main pages of the dashboard, on the seeded site of the browser tests, as
PNG files for the docs (`python -m tests.e2e.screenshots docs/screenshots`)."""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.e2e.browser import chromium
from tests.e2e.dashboard_site import Site, eline, fibre, running_site


def more_orders(site: Site) -> None:
    """A fuller picture than the tests need: a day of orders, some late, some fallen out."""
    for n in range(8):
        site.create(fibre(f"BSS-{4100 + n}", priority=str(n % 4)))
        site.at(site.clock.now + timedelta(minutes=37))
    site.simulator.behaviour.refuse_specs = ["line-register"]
    site.create(fibre("BSS-4200"))
    site.create(fibre("BSS-4201"))
    site.simulator.behaviour.refuse_specs = []
    site.create(eline("BSS-4300", requestedCompletionDate=(site.clock.now + timedelta(hours=1)).isoformat()))
    site.at(site.t0 + timedelta(hours=1, minutes=40))
    site.simulator.behaviour.instant = False  # its port reservation answers at the next poll, in an hour
    site.create(
        fibre("BSS-4400", requestedCompletionDate=(site.clock.now + timedelta(minutes=20)).isoformat())
    )
    site.simulator.behaviour.instant = True
    site.at(site.clock.now + timedelta(minutes=6))  # the reservation has overrun its 2 minutes
    # Surveys in the field-engineering queue: one being done, one claimed, the others waiting.
    for n in range(3):
        site.create(eline(f"BSS-{4500 + n}", priority=str(n + 1)))
    tasks = site.api.get("/provtrack/v1/task", params={"workGroup": "field-engineering"}).json()
    working, claimed = tasks[0]["id"], tasks[1]["id"]
    for action in ("claim", "start"):
        site.api.post(f"/provtrack/v1/task/{working}/{action}", headers={"X-Actor": "test-admin"})
    site.api.post(f"/provtrack/v1/task/{claimed}/claim", headers={"X-Actor": "farid"})


def shoot(site: Site, out: Path) -> list[Path]:
    shots = {
        "orders.png": ("/", 1280),
        "order.png": (f"/orders/{site.ids['BSS-4400']}", 1280),
        "jeopardy.png": ("/jeopardy", 1280),
        "fallout.png": ("/fallout", 1280),
        "metrics.png": ("/performance?period=7d", 1280),
        "events.png": ("/events", 1280),
        "queues.png": ("/queues", 1280),
        "cancel.png": (f"/orders/{site.ids['BSS-4200']}/cancel", 1280),
        "orders-narrow.png": ("/", 390),
        "queues-narrow.png": ("/queues", 390),
    }
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with chromium() as context:
        page: Any = context.new_page()  # type: ignore[attr-defined]
        for name, (path, width) in shots.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(site.page(path))
            page.screenshot(path=str(out / name), full_page=True)
            written.append(out / name)
    return written


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    with tempfile.TemporaryDirectory() as workdir, running_site(Path(workdir)) as site:
        more_orders(site)
        for path in shoot(site, out):
            print(path)


if __name__ == "__main__":
    main()
