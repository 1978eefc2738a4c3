"""A TMF652 v4 resource ordering client: create and read resource orders, register with the hub.

Connection errors, timeouts and 5xx answers raise `DownstreamUnavailable` (worth retrying later);
a 4xx answer raises `DownstreamRefused` with the body kept (retrying the same request is pointless).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

RESOURCE_ORDER = "resourceOrder"


class DownstreamUnavailable(Exception):
    """The system could not be reached or failed (5xx): try again later."""


class DownstreamRefused(Exception):
    """The system answered 4xx: the request itself is wrong for it."""

    def __init__(self, status: int, body: Any, message: str) -> None:
        self.status = status
        self.body = body
        super().__init__(message)


class ResourceOrderingClient:
    """One HTTP connection pool shared by the calls to every system."""

    def __init__(self, *, timeout: float = 10.0, connect_timeout: float = 3.0) -> None:
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        # Opened on first use and shared by the worker's threads (httpx.Client is thread-safe).
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    timeout=self._timeout,
                    headers={"Accept": "application/json"},
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                )
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def create(self, base_url: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{base_url}/{RESOURCE_ORDER}", json=body)

    def get(self, base_url: str, resource_order_id: str) -> dict[str, Any]:
        return self._call("GET", f"{base_url}/{RESOURCE_ORDER}/{resource_order_id}")

    def subscribe(self, base_url: str, callback: str) -> dict[str, Any]:
        """Register `callback` with the system's hub for resource order state changes."""
        body = {"callback": callback, "query": "eventType=ResourceOrderStateChangeEvent"}
        return self._call("POST", f"{base_url}/hub", json=body)

    def _call(self, method: str, url: str, json: Any = None) -> dict[str, Any]:
        try:
            response = self._client().request(method, url, json=json)
        except httpx.HTTPError as exc:
            raise DownstreamUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise DownstreamUnavailable(f"{method} {url}: HTTP {response.status_code}: {response.text[:500]}")
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = response.text[:4000]
        if response.status_code >= 400:
            raise DownstreamRefused(
                response.status_code, payload, f"{method} {url}: HTTP {response.status_code}"
            )
        if not isinstance(payload, dict):
            raise DownstreamUnavailable(f"{method} {url}: the answer is not a JSON object")
        return payload
