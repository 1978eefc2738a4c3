from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import order_body


def test_health_reports_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/provtrack/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_count_the_orders_created(client: TestClient) -> None:
    before = _created(client)
    client.post("/tmf-api/serviceOrdering/v4/serviceOrder", json=order_body())
    assert _created(client) == before + 1


def _created(client: TestClient) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    for line in response.text.splitlines():
        if line.startswith("provtrack_service_orders_created_total "):
            return float(line.split()[1])
    raise AssertionError("provtrack_service_orders_created_total is not exposed")
