"""The API fuzzed against its own OpenAPI document (schemathesis), on SQLite and PostgreSQL: no
request it can make answers 5xx, and every answer has a documented status, content type and schema;
authentication is checked too (a made-up token must be refused). A bounded number of cases per
operation keeps it to seconds.

Left out: whether every body the schema allows is accepted, and every other refused. The bodies are
open by design (TMF630's extension pattern: `@type` subclasses add attributes), and TMF641's rules
(item actions, references between items) are stricter than a schema can say."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from provtrack.adapters.policy_file import ReloadingPolicy
from provtrack.adapters.store.repository import SqlStore
from provtrack.api.app import create_app
from provtrack.services import access
from provtrack.services.jeopardy import JeopardyMonitor
from provtrack.settings import Settings
from tests.conftest import FakeClock
from tests.factories import order_body

CASES = 8  # per operation and database
SCHEMA_PRECISION = [checks.positive_data_acceptance, checks.negative_data_rejection]


def test_the_api_answers_as_its_openapi_document_says(
    database_url: str, store: SqlStore, clock: FakeClock
) -> None:
    monitor = JeopardyMonitor(ReloadingPolicy(None), email=False)
    app = create_app(Settings(database_url=database_url), store, clock=clock, jeopardy=monitor)
    _, token = access.create_api_key(store, client="fuzz", scopes="admin", name="fuzz", now=clock())
    admin = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:  # a few orders for the reads to find
        for n in range(3):
            body = order_body(externalId=f"F-{n}")
            created = client.post("/tmf-api/serviceOrdering/v4/serviceOrder", json=body, headers=admin)
            assert created.status_code == 201
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers=admin, excluded_checks=SCHEMA_PRECISION)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations >= 25
    assert not failures, "\n\n".join(failures)
