"""A TMF638 v4 service inventory client: create a service, update or terminate it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from provtrack.adapters.tmf652 import DownstreamUnavailable, OutcomeUnknown, ResourceOrderingClient


class ServiceInventoryClient(ResourceOrderingClient):
    """Same transport and error rules as the TMF652 client (5xx retried later, 4xx refused)."""

    def create_service(self, base_url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a service; no answer at all is `OutcomeUnknown` (it may exist: `find_service`)."""
        try:
            return self._call("POST", f"{base_url}/service", json=body, repeat_if_stale=False)
        except DownstreamUnavailable as exc:
            if exc.answered:
                raise
            raise OutcomeUnknown(str(exc), stale=exc.stale) from None

    def find_service(self, base_url: str, order_id: str, item_id: str) -> dict[str, Any] | None:
        """The service an order item created (TMF630 filtering on `serviceOrderItem`; the answer is
        checked, since an inventory may ignore a filter it does not know)."""
        query = f"serviceOrderItem.serviceOrderId={quote(order_id)}&serviceOrderItem.itemId={quote(item_id)}"
        for service in self._call_list("GET", f"{base_url}/service?{query}"):
            references = service.get("serviceOrderItem") if isinstance(service, dict) else None
            if any(
                isinstance(r, dict) and (r.get("serviceOrderId"), r.get("itemId")) == (order_id, item_id)
                for r in references or []
            ):
                return dict(service)
        return None

    def update_service(self, base_url: str, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", f"{base_url}/service/{service_id}", json=body)
