"""The HTTP sender: a subscriber that hangs holds at most its own delivery slots; an event delivery
connects only to an address the callback policy allows, checked when connecting."""

from __future__ import annotations

import threading
import time

from provtrack.adapters.webhooks import HttpSender, resolve
from provtrack.domain.events import CallbackPolicy
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


def test_a_checked_post_connects_to_the_address_it_checked_and_keeps_the_host_name() -> None:
    receiver = Receiver().start()
    # Only the injected resolver knows this name: the POST can only arrive by the address it gave.
    sender = HttpSender(
        timeout=5, resolver=lambda host: ["127.0.0.1"] if host == "hooks.partner.example" else []
    )
    try:
        attempt = sender.post(
            f"http://hooks.partner.example:{receiver.port}/events",
            b"{}",
            {},
            subscriber="s",
            policy=CallbackPolicy(("127.0.0.1",)),
        )
    finally:
        receiver.stop()
        sender.close()
    assert attempt.outcome == Outcome.DELIVERED
    [received] = receiver.accepted
    assert received.headers["host"] == f"hooks.partner.example:{receiver.port}"


def test_a_checked_post_to_an_address_the_policy_refuses_is_not_sent() -> None:
    receiver = Receiver().start()
    sender = HttpSender(timeout=5, resolver=lambda host: ["127.0.0.1"])
    try:
        attempt = sender.post(
            f"http://hooks.partner.example:{receiver.port}/events",
            b"{}",
            {},
            subscriber="s",
            policy=CallbackPolicy(("10.20.0.0/16",)),
        )
    finally:
        receiver.stop()
        sender.close()
    assert attempt.outcome == Outcome.BLOCKED
    assert not attempt.sent
    assert attempt.error is not None
    assert "127.0.0.1" in attempt.error
    assert receiver.requests == 0


def test_a_checked_post_resolves_again_for_each_new_connection() -> None:
    receiver = Receiver().start()
    answers = {"hooks.partner.example": ["127.0.0.1"]}
    sender = HttpSender(timeout=5, resolver=lambda host: answers.get(host, []))
    policy = CallbackPolicy(("127.0.0.1",))
    url = f"http://hooks.partner.example:{receiver.port}/events"
    try:
        before = sender.post(url, b"{}", {"connection": "close"}, subscriber="s", policy=policy)
        answers["hooks.partner.example"] = ["169.254.169.254"]
        after = sender.post(url, b"{}", {}, subscriber="s", policy=policy)
    finally:
        receiver.stop()
        sender.close()
    assert (before.outcome, after.outcome) == (Outcome.DELIVERED, Outcome.BLOCKED)
    assert receiver.requests == 1
