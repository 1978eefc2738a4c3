"""The HTTP sender: a subscriber that hangs holds at most its own delivery slots."""

from __future__ import annotations

import threading
import time

from provtrack.adapters.webhooks import HttpSender, resolve
from provtrack.domain.webhooks import Outcome
from tests.integration.receiver import Receiver, free_port


def test_a_hanging_subscriber_gets_busy_answers_while_others_are_served() -> None:
    hanging, healthy = Receiver().start(), Receiver().start()
    hanging.stall = 2
    sender = HttpSender(timeout=10, per_subscriber=2, slow_after=0.05, max_wait=5)
    try:
        stuck = [
            threading.Thread(target=sender.post, args=(hanging.url, b"{}", {}), kwargs={"subscriber": "slow"})
            for _ in range(2)
        ]
        for thread in stuck:
            thread.start()
        deadline = time.monotonic() + 10
        while hanging.requests < 2 and time.monotonic() < deadline:
            time.sleep(0.01)

        assert sender.post(hanging.url, b"{}", {}, subscriber="slow").outcome == Outcome.BUSY
        assert sender.post(healthy.url, b"{}", {}, subscriber="fast").outcome == Outcome.DELIVERED
    finally:
        hanging.stop()
        for thread in stuck:
            thread.join(timeout=10)
        healthy.stop()
        sender.close()
    assert hanging.requests == 2  # the busy one was never sent


def test_a_refused_connection_and_a_timeout_are_retryable() -> None:
    sender = HttpSender(timeout=0.2)
    hanging = Receiver().start()
    hanging.stall = 1
    try:
        refused = sender.post(f"http://127.0.0.1:{free_port()}/x", b"{}", {}, subscriber="a")
        timed_out = sender.post(hanging.url, b"{}", {}, subscriber="b")
    finally:
        hanging.stop()
        sender.close()
    assert refused.outcome == timed_out.outcome == Outcome.RETRY
    assert timed_out.error is not None
    assert "timed out" in timed_out.error


def test_host_names_resolve_to_their_addresses() -> None:
    assert "127.0.0.1" in resolve("localhost")
    assert resolve("no-such-host.invalid") == []
