"""The pure parts of events: envelope, subscription filters, listener paths, callback checks, signing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provtrack.domain.events import (
    ALL_EVENT_TYPES,
    CallbackPolicy,
    DeliverTo,
    RefusedCallback,
    check_callback,
    envelope,
    listener_name,
    parse_event_filter,
    target_url,
)
from provtrack.domain.query import InvalidQuery
from provtrack.domain.webhooks import (
    Attempt,
    InvalidSignature,
    Outcome,
    new_secret,
    sign,
    signature_headers,
    verify,
)

ORDER = {
    "id": "o-1",
    "state": "completed",
    "priority": "1",
    "serviceOrderItem": [{"id": "1", "state": "completed"}, {"id": "2", "state": "failed"}],
}


def event(event_type: str = "ServiceOrderStateChangeEvent", **order: object) -> dict[str, object]:
    return envelope(
        event_id="e-1",
        event_type=event_type,
        event_time="2026-11-27T09:00:00.000Z",
        correlation_id="o-1",
        document={**ORDER, **order},
        base_url="https://som.example.net/",
    )


def test_the_envelope_carries_the_order_with_its_absolute_href() -> None:
    built = event()
    assert built["eventType"] == built["@type"] == "ServiceOrderStateChangeEvent"
    assert built["correlationId"] == "o-1"
    order = built["event"]["serviceOrder"]  # type: ignore[index]
    assert order["href"] == "https://som.example.net/tmf-api/serviceOrdering/v4/serviceOrder/o-1"
    assert list(order)[:2] == ["id", "href"]


def test_a_cancel_task_event_carries_the_task() -> None:
    built = event("CancelServiceOrderCreateEvent")
    assert set(built["event"]) == {"cancelServiceOrder"}  # type: ignore[arg-type]


def test_there_are_ten_event_types() -> None:
    assert len(ALL_EVENT_TYPES) == 10


@pytest.mark.parametrize(
    ("query", "selected"),
    [
        (None, True),
        ("", True),
        ("eventType=ServiceOrderStateChangeEvent", True),
        ("eventType=ServiceOrderCreateEvent", False),
        ("eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed", True),
        ("eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=failed", False),
        ("event.serviceOrder.state=failed,completed", True),
        ("event.serviceOrder.state=failed;event.serviceOrder.state=completed", True),
        ("event.serviceOrder.serviceOrderItem.state=failed", True),  # any item
        ("event.serviceOrder.priority.lt=2", True),
        ("event.serviceOrder.priority.gt=2", False),
        ("event.serviceOrder.state.ne=completed", False),
        ("event.serviceOrder.category=residential", False),  # absent attribute
    ],
)
def test_a_filter_selects_events_by_type_and_order_attributes(query: str | None, selected: bool) -> None:
    assert parse_event_filter(query).matches(event()) is selected


@pytest.mark.parametrize("query", ["eventType=OrderBaked", "fields=state", "limit=3", "=x"])
def test_a_filter_that_cannot_select_events_is_refused(query: str) -> None:
    with pytest.raises(InvalidQuery):
        parse_event_filter(query)


def test_the_listener_path_is_the_event_name_as_in_the_spec() -> None:
    assert listener_name("ServiceOrderCreateEvent") == "serviceOrderCreateEvent"
    assert (
        target_url("https://l.example.net/tmf/", DeliverTo.LISTENER, "ServiceOrderDeleteEvent")
        == "https://l.example.net/tmf/listener/serviceOrderDeleteEvent"
    )
    assert target_url("https://l.example.net/x", DeliverTo.CALLBACK, "ServiceOrderDeleteEvent") == (
        "https://l.example.net/x"
    )


OPEN = CallbackPolicy()


@pytest.mark.parametrize(
    ("url", "addresses", "why"),
    [
        ("http://localhost:8080/x", ["127.0.0.1"], "loopback address 127.0.0.1"),
        ("http://printer.lan/x", ["192.168.1.20"], "private address 192.168.1.20"),
        ("http://metadata/x", ["169.254.169.254"], "link-local address 169.254.169.254"),
        ("http://v6.example/x", ["2001:db8::1", "::1"], "address"),
        ("http://nowhere.example/x", [], "does not resolve"),
        ("gopher://example.net/x", ["93.184.216.34"], "only http and https"),
        ("http:///x", [], "has no host"),
    ],
)
def test_internal_and_odd_callbacks_are_refused_with_the_reason(
    url: str, addresses: list[str], why: str
) -> None:
    with pytest.raises(RefusedCallback, match=why):
        check_callback(url, addresses, OPEN)


def test_a_public_callback_is_accepted_when_no_allow_list_is_set() -> None:
    check_callback("https://listener.example.net/tmf641", ["93.184.216.34"], OPEN)


def test_the_allow_list_decides_which_hosts_are_reachable() -> None:
    policy = CallbackPolicy(("127.0.0.1", "*.partner.example", "10.20.0.0/16"))
    check_callback("http://127.0.0.1:9000/x", ["127.0.0.1"], policy)
    check_callback("http://hooks.partner.example/x", ["10.99.0.1"], policy)  # named: trusted
    check_callback("http://crm.internal/x", ["10.20.3.4"], policy)
    with pytest.raises(RefusedCallback, match="allow-list"):
        check_callback("https://listener.example.net/x", ["93.184.216.34"], policy)
    with pytest.raises(RefusedCallback, match="allow-list"):
        check_callback("http://localhost/x", ["127.0.0.1", "::1"], policy)


def test_signing_matches_the_standard_webhooks_reference() -> None:
    # The test vector of the Standard Webhooks reference libraries.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_receiver_accepts_either_secret_during_a_rotation_and_refuses_tampering() -> None:
    old, new = new_secret(), new_secret()
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    body = b'{"eventId":"e-1"}'
    headers = signature_headers([new, old], "e-1", at, body)
    verify(old, headers, body, now=at)
    verify(new, headers, body, now=at + timedelta(minutes=4))
    with pytest.raises(InvalidSignature):
        verify(new, headers, body + b" ", now=at)
    with pytest.raises(InvalidSignature):
        verify(new_secret(), headers, body, now=at)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(new, headers, body, now=at + timedelta(minutes=6))


@pytest.mark.parametrize(
    ("attempt", "outcome"),
    [
        (Attempt(200), Outcome.DELIVERED),
        (Attempt(204), Outcome.DELIVERED),
        (Attempt(None, "connection refused"), Outcome.RETRY),
        (Attempt(429), Outcome.RETRY),
        (Attempt(503), Outcome.RETRY),
        (Attempt(410), Outcome.GONE),
        (Attempt(400), Outcome.REFUSED),
        (Attempt(302), Outcome.REFUSED),
    ],
)
def test_what_an_answer_means_for_the_delivery(attempt: Attempt, outcome: Outcome) -> None:
    assert attempt.outcome == outcome


def test_the_receiver_snippet_in_the_docs_verifies_a_delivery() -> None:
    import re
    import time
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "events.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert snippet is not None
    namespace: dict[str, object] = {}
    exec(snippet.group(1), namespace)
    secret, body = new_secret(), b'{"eventId":"e-9"}'
    headers = signature_headers([secret], "e-9", datetime.fromtimestamp(time.time(), UTC), body)
    receiver_verify = namespace["verify"]
    assert callable(receiver_verify)
    assert receiver_verify(secret, headers, body) is True
    assert receiver_verify(secret, headers, body + b"!") is False
