"""The events page: a subscription's health from its streams and dead letters, and the replay button,
against a real receiver on loopback."""

from __future__ import annotations

import re

from provtrack.api.errors import ERRORS
from provtrack.web.app import install_dashboard
from tests.integration.events_harness import Hub, hub, receiver, settings
from tests.integration.receiver import Receiver

__all__ = ["hub", "receiver", "settings"]


def cells(html: str, subscription_id: str) -> list[str]:
    row = re.search(rf'<tr data-subscription="{subscription_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert row is not None
    return [
        re.sub(r"<[^>]+>", " ", c).split()[0] if c.strip() else ""
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]


def test_dead_letters_show_on_the_events_page_and_its_replay_delivers_them(
    hub: Hub, receiver: Receiver
) -> None:
    install_dashboard(hub.api.app, errors=ERRORS)  # type: ignore[arg-type]
    receiver.answers.append(422)  # the create event is refused: dead at once
    subscription = hub.subscribe(receiver.url)
    hub.create_order()
    worker = hub.worker()
    worker.run_until_idle()

    before = cells(hub.api.get("/events").text, subscription["id"])
    replay = hub.api.post("/events/replay", data={"subscription": subscription["id"]}, follow_redirects=False)
    worker.run_until_idle()
    after = cells(hub.api.get("/events").text, subscription["id"])

    # callback, filter, state, orders followed, failing now, dead letters, replaying, replayed
    assert before[3:8] == ["1", "0", "1", "0", "0"]
    assert replay.status_code == 303
    assert (
        "1%20dead%20letters%20queued" in replay.headers["location"]
        or "1+dead+letters+queued" in replay.headers["location"]
    )
    assert after[3:8] == ["1", "0", "0", "0", "1"]
    assert len(receiver.accepted) == 1
