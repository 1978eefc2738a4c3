"""A TMF622 v4 product ordering client: read a product order and a cancel task, register with the hub.

Low volume (one call per product order being cancelled, and a safety poll), so httpx. Connection
errors, timeouts and 5xx raise `DownstreamUnavailable`, a 4xx `DownstreamRefused`, as for TMF652.
"""

from __future__ import annotations

from typing import Any

import httpx

from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable

LISTENER_QUERY = (
    "eventType=CancelProductOrderCreateEvent,CancelProductOrderStateChangeEvent,ProductOrderStateChangeEvent"
)


class ProductOrderingClient:
    def __init__(self, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(timeout=timeout, headers={"Accept": "application/json"})

    def close(self) -> None:
        self._client.close()

    def get_product_order(self, base_url: str, product_order_id: str) -> dict[str, Any]:
        return self._call("GET", f"{base_url}/productOrder/{product_order_id}")

    def get_cancellation(self, base_url: str, cancellation_id: str) -> dict[str, Any]:
        return self._call("GET", f"{base_url}/cancelProductOrder/{cancellation_id}")

    def find_cancellations(self, base_url: str, product_order_id: str) -> list[dict[str, Any]]:
        """The CancelProductOrder tasks of a product order (TMF630 filter `productOrder.id`)."""
        url = f"{base_url}/cancelProductOrder"
        try:
            response = self._client.get(url, params={"productOrder.id": product_order_id})
        except httpx.HTTPError as exc:
            raise DownstreamUnavailable(f"GET {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise DownstreamUnavailable(f"GET {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise DownstreamRefused(
                response.status_code, response.text[:4000], f"GET {url}: HTTP {response.status_code}"
            )
        payload = response.json()
        return [t for t in payload if isinstance(t, dict)] if isinstance(payload, list) else []

    def subscribe(self, base_url: str, callback: str) -> dict[str, Any]:
        return self._call("POST", f"{base_url}/hub", json={"callback": callback, "query": LISTENER_QUERY})

    def _call(self, method: str, url: str, json: Any = None) -> dict[str, Any]:
        try:
            response = self._client.request(method, url, json=json)
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
