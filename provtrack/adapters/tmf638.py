"""A TMF638 v4 service inventory client: create a service, update or terminate it."""

from __future__ import annotations

from typing import Any

from provtrack.adapters.tmf652 import ResourceOrderingClient


class ServiceInventoryClient(ResourceOrderingClient):
    """Same transport and error rules as the TMF652 client (5xx retried later, 4xx refused)."""

    def create_service(self, base_url: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"{base_url}/service", json=body)

    def update_service(self, base_url: str, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", f"{base_url}/service/{service_id}", json=body)
