"""The dashboard's buttons and pages over HTTP (no browser), on SQLite and PostgreSQL: each button
is the use case the API calls, and a refusal comes back worded as the API words it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.api.errors import ERRORS
from provtrack.settings import Settings
from provtrack.web.app import install_dashboard
from tests.conftest import AS_ADMIN, FakeClock
from tests.factories import order_body
from tests.integration.tmf import ORDERS


@pytest.fixture
def web(settings: Settings, store: SqlStore, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(settings, store, clock=clock, authenticator=AS_ADMIN)
    install_dashboard(app, errors=ERRORS)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def notice(response: object) -> tuple[str, str]:
    location = response.headers["location"]  # type: ignore[attr-defined]
    query = parse_qs(urlsplit(location).query)
    return query["notice"][0], query["tone"][0]


def test_hold_resume_and_a_note_change_the_order_as_the_api_would(web: TestClient) -> None:
    order_id = web.post(ORDERS, json=order_body()).json()["id"]
    web.patch(f"{ORDERS}/{order_id}", json={"state": "inProgress"})

    held = web.post(f"/orders/{order_id}/hold", headers={"X-Provtrack-User": "c.dubois"})
    state_after_hold = web.get(f"{ORDERS}/{order_id}").json()["state"]
    resumed = web.post(f"/orders/{order_id}/resume")
    noted = web.post(f"/orders/{order_id}/note", data={"text": "Customer away until Monday"})
    order = web.get(f"{ORDERS}/{order_id}").json()

    assert held.status_code == 303
    assert urlsplit(held.headers["location"]).path == f"/orders/{order_id}"
    assert state_after_hold == "held"
    assert notice(resumed) == ("Order resumed.", "ok")
    assert notice(noted)[1] == "ok"
    assert order["state"] == "inProgress"
    assert [(n["author"], n["text"]) for n in order["note"]] == [("test-admin", "Customer away until Monday")]
    timeline = web.get(f"/provtrack/v1/serviceOrder/{order_id}/timeline").json()
    assert any(c["actor"] == "test-admin:c.dubois" and c["newValue"] == "held" for c in timeline)


def test_a_refused_move_is_worded_as_the_api_words_it(web: TestClient) -> None:
    order_id = web.post(ORDERS, json=order_body()).json()["id"]
    web.patch(f"{ORDERS}/{order_id}", json={"state": "inProgress"})
    web.patch(f"{ORDERS}/{order_id}", json={"state": "pending"})

    refused = web.post(f"/orders/{order_id}/hold", data={"back": f"/orders/{order_id}"})

    api = web.patch(f"{ORDERS}/{order_id}", json={"state": "held"}).json()  # pending -> held: refused
    assert notice(refused) == (f"{api['reason']}: {api['message']}", "error")
    assert web.get(f"{ORDERS}/{order_id}").json()["state"] == "pending"


def test_a_redirect_goes_back_to_the_dashboard_only(web: TestClient) -> None:
    order_id = web.post(ORDERS, json=order_body()).json()["id"]

    response = web.post(f"/orders/{order_id}/note", data={"text": "x", "back": "//evil.example/"})

    assert urlsplit(response.headers["location"]).netloc == ""
    assert response.headers["location"].startswith("/?")


def test_pages_answer_what_they_cannot_show_with_the_reason(web: TestClient) -> None:
    missing = web.get("/orders/no-such-order")
    bad_filter = web.get("/?orderedFrom=yesterday")

    assert missing.status_code == 404
    assert "no service order with id" in missing.text
    assert bad_filter.status_code == 400
    assert "orderedFrom" in bad_filter.text


def test_the_change_mark_moves_only_when_something_changed(web: TestClient) -> None:
    order_id = web.post(ORDERS, json=order_body()).json()["id"]
    first = web.get("/live", params={"mark": "0", "order": order_id})
    mark = first.text.split("mark=")[1].split("&")[0]

    unchanged = web.get("/live", params={"mark": mark, "order": order_id})
    web.post(f"/orders/{order_id}/note", data={"text": "called back"})
    changed = web.get("/live", params={"mark": mark, "order": order_id})

    assert first.headers["hx-trigger"] == "provtrack-changed"
    assert unchanged.status_code == 204
    assert changed.status_code == 200
    assert changed.headers["hx-trigger"] == "provtrack-changed"
