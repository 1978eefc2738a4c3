"""Paths and small helpers the TMF641 integration tests share, over the ASGI app or real HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

BASE = "/tmf-api/serviceOrdering/v4"
ORDERS = f"{BASE}/serviceOrder"
CANCELS = f"{BASE}/cancelServiceOrder"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


class Response(Protocol):
    """What the tests read of a response (TestClient answers httpx2 responses, httpx.Client httpx ones)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


class Client(Protocol):
    def post(self, url: str, *, json: Any) -> Response: ...


def create_order(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST an order and return it, failing on anything but 201."""
    response = client.post(ORDERS, json=body)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def assert_tmf_error(response: Response, status: int, code: str | None = None) -> str:
    """Check the TMF630 error shape and status; return the message for further checks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert {"code", "reason", "message", "status"} <= body.keys(), body
    assert body["status"] == str(status)
    assert body["reason"]
    if code is not None:
        assert body["code"] == code, body
    message: str = body["message"]
    return message
