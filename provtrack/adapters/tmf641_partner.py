"""A TMF641 v4 client for partner orders: send, look up by externalId, read, cancel, and subscribe.

Credentials are read from the environment variable the catalog names, at each request: rotating a
token needs no restart, and no secret is ever in the catalog file. httpx, not the keep-alive
http.client of the TMF652 client: partner orders are few, and a POST must never be repeated
under the caller's feet (a send whose outcome is unknown is looked up first, by the engine).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from provtrack.adapters.tmf652 import DownstreamRefused, DownstreamUnavailable
from provtrack.domain.partners import Partner, Scheme

SERVICE_ORDER = "serviceOrder"
CANCEL_SERVICE_ORDER = "cancelServiceOrder"
HUB_QUERY = (
    "eventType=ServiceOrderStateChangeEvent,ServiceOrderMilestoneEvent,ServiceOrderJeopardyEvent,"
    "CancelServiceOrderStateChangeEvent"
)


class CredentialsMissing(DownstreamUnavailable):
    """The environment variable the catalog names for a partner's secret is not set."""


class PartnerOrderingClient:
    def __init__(
        self,
        *,
        timeout: float = 10.0,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._environ = environ if environ is not None else os.environ

    def close(self) -> None:
        self._client.close()

    def create(self, partner: Partner, body: dict[str, Any]) -> dict[str, Any]:
        return self._object(self._call(partner, "POST", SERVICE_ORDER, json=body), partner)

    def find(self, partner: Partner, external_id: str) -> dict[str, Any] | None:
        """Our order at the partner by its externalId (a partner that ignores the filter is
        filtered here), or None when the partner has none."""
        found = self._call(partner, "GET", SERVICE_ORDER, params={"externalId": external_id})
        if not isinstance(found, list):
            raise DownstreamUnavailable(f"{partner.name}: a list of service orders was expected")
        matching = [o for o in found if isinstance(o, dict) and o.get("externalId") == external_id]
        return matching[0] if matching else None

    def get(self, partner: Partner, order_id: str) -> dict[str, Any]:
        return self._object(self._call(partner, "GET", f"{SERVICE_ORDER}/{order_id}"), partner)

    # --- withdrawal (TMF641 cancelServiceOrder), docs/cancellation.md ------------------------------

    def cancel(self, partner: Partner, order_id: str, reason: str) -> dict[str, Any]:
        """POST a CancelServiceOrder for the partner's order; the answer is the cancel task."""
        body = {
            "@type": "CancelServiceOrder",
            "cancellationReason": reason,
            "serviceOrder": {"id": order_id, "@referredType": "ServiceOrder"},
        }
        return self._object(self._call(partner, "POST", CANCEL_SERVICE_ORDER, json=body), partner)

    def get_cancellation(self, partner: Partner, cancellation_id: str) -> dict[str, Any]:
        path = f"{CANCEL_SERVICE_ORDER}/{quote(cancellation_id)}"
        return self._object(self._call(partner, "GET", path), partner)

    def find_cancellations(self, partner: Partner, order_id: str) -> list[dict[str, Any]]:
        """The cancel tasks the partner has for its order (looked up before a POST is repeated; a
        partner that ignores the filter is filtered here)."""
        found = self._call(partner, "GET", CANCEL_SERVICE_ORDER, params={"serviceOrder.id": order_id})
        if not isinstance(found, list):
            raise DownstreamUnavailable(f"{partner.name}: a list of cancel tasks was expected")
        return [task for task in found if isinstance(task, dict) and _order_of(task) == order_id]

    def subscribe(self, partner: Partner, callback: str) -> dict[str, Any]:
        body = {"callback": callback, "query": HUB_QUERY}
        return self._object(self._call(partner, "POST", "hub", json=body), partner)

    def subscription_exists(self, partner: Partner, hub_id: str) -> bool:
        """Whether the partner still has our hub subscription `hub_id` (404: it is gone)."""
        try:
            self._call(partner, "GET", f"hub/{quote(hub_id)}")
        except DownstreamRefused as exc:
            if exc.status in (404, 410):
                return False
            raise
        return True

    def unsubscribe(self, partner: Partner, hub_id: str) -> None:
        try:
            self._call(partner, "DELETE", f"hub/{quote(hub_id)}")
        except DownstreamRefused as exc:
            if exc.status not in (404, 410):
                raise

    def _headers(self, partner: Partner) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        credentials = partner.credentials
        if credentials is None:
            return headers
        secret = self._environ.get(credentials.variable)
        if not secret:
            raise CredentialsMissing(
                f"{partner.name}: the environment variable {credentials.variable} (its credentials) is not set"
            )
        if credentials.scheme is Scheme.BEARER:
            headers["Authorization"] = f"Bearer {secret}"
        elif credentials.scheme is Scheme.BASIC:
            token = base64.b64encode(f"{credentials.username}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        else:
            headers[credentials.header] = secret
        return headers

    def _call(
        self,
        partner: Partner,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        url = f"{partner.url}/{path}"
        try:
            response = self._client.request(
                method, url, json=json, params=params, headers=self._headers(partner)
            )
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
        return payload

    @staticmethod
    def _object(payload: Any, partner: Partner) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise DownstreamUnavailable(f"{partner.name}: the answer is not a JSON object")
        return payload


def _order_of(cancellation: dict[str, Any]) -> Any:
    ref = cancellation.get("serviceOrder")
    return ref.get("id") if isinstance(ref, dict) else None
