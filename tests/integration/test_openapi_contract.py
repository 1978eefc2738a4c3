"""The OpenAPI document is a contract: it matches TMF641 v4.1 where it says it does, declares what each
operation takes and answers, and the server behaves as it says (OPTIONS, HEAD, offline docs)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from provtrack.adapters.memory_store import MemoryStore
from provtrack.api import schemas
from provtrack.api.app import create_app
from provtrack.domain.states import OrderState, TaskState
from provtrack.settings import Settings
from tests.conftest import AS_ADMIN
from tests.factories import item, order_body
from tests.integration.openapi_diff import REPOSITORY, SPEC, differences
from tests.integration.tmf import BASE, CANCELS, ORDERS, create_order

DOCS = REPOSITORY / "docs" / "tmf641.md"
DIFFERENCES_HEADING = "### Deliberate differences from the TMF641 v4.1 specification"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(Settings(max_limit=500), MemoryStore(), require_catalog=True, authenticator=AS_ADMIN)
    built: dict[str, Any] = app.openapi()
    return built


@pytest.fixture(scope="module")
def specification() -> dict[str, Any]:
    if not SPEC.parent.is_dir():
        pytest.skip(f"the shared specifications are not beside the repository ({SPEC.parent})")
    loaded: dict[str, Any] = json.loads(SPEC.read_text())
    return loaded


def documented_differences() -> set[str]:
    """The backquoted keys that open each line of the docs' list of deliberate differences."""
    text = DOCS.read_text()
    section = text.split(DIFFERENCES_HEADING, 1)[1].split("\n#", 1)[0]
    keys: set[str] = set()
    for line in section.splitlines():
        if line.startswith("- "):
            lead = line[2:].split(":", 1)[0] if "`:" in line else line[2:]
            keys.update(re.findall(r"`([^`]+)`", lead))
    return keys


def test_the_document_differs_from_tmf641_only_where_the_docs_say_why(
    document: dict[str, Any], specification: dict[str, Any]
) -> None:
    found = differences(specification, document)

    undocumented = sorted(set(found) - documented_differences())
    stale = sorted(documented_differences() - set(found))

    assert undocumented == [], "differences docs/tmf641.md does not list: " + "; ".join(
        f"{key} ({found[key]})" for key in undocumented
    )
    assert stale == [], f"docs/tmf641.md lists differences that are gone: {stale}"


def test_the_comparison_notices_a_missing_parameter_and_a_changed_enumeration(
    document: dict[str, Any], specification: dict[str, Any]
) -> None:
    broken = json.loads(json.dumps(document))
    operation = broken["paths"][f"{BASE}/serviceOrder"]["get"]
    operation["parameters"] = [p for p in operation["parameters"] if p["name"] != "fields"]
    broken["components"]["schemas"]["OrderItemActionType"]["enum"].remove("noChange")

    found = differences(specification, broken)

    assert "GET /serviceOrder parameter fields" in found
    assert "OrderItemActionType values" in found


def test_the_list_operations_declare_paging_fields_sort_and_typed_filters(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"][f"{BASE}/serviceOrder"]["get"]["parameters"]}

    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}
    assert parameters["offset"]["schema"] == {"type": "integer", "minimum": 0}
    assert {"fields", "sort", "externalId", "orderDate.gte", "serviceOrderItem.state"} <= parameters.keys()
    assert parameters["orderDate.gt"]["schema"] == {"type": "string", "format": "date-time"}
    state = parameters["state"]
    assert state["schema"]["items"] == {"$ref": "#/components/schemas/ServiceOrderStateType"}
    assert (state["style"], state["explode"]) == ("form", False)
    tasks = {p["name"] for p in document["paths"][f"{BASE}/cancelServiceOrder"]["get"]["parameters"]}
    assert {"fields", "offset", "limit", "sort", "state", "serviceOrder.id"} <= tasks


def test_every_operation_that_reads_a_body_declares_it(document: dict[str, Any]) -> None:
    with_body = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }

    assert with_body >= {
        f"POST {BASE}/serviceOrder",
        f"PATCH {BASE}/serviceOrder/{{id}}",
        f"POST {BASE}/cancelServiceOrder",
        f"POST {BASE}/hub",
        "POST /provtrack/v1/hub/{id}/rotateSecret",
        "POST /provtrack/v1/deadLetter/replay",
        "POST /provtrack/v1/activity/{id}/skip",
        "POST /provtrack/v1/activity/{id}/fail",
        "POST /provtrack/v1/tmf652/{system}/{token}/listener/{event_type}",
    }


# A validation failure is a TMF630 400, never FastAPI's 422: 422 is only the Idempotency-Key reused
# (docs/security.md) and a TMF652 notification (of a resource order or a cancel task) its system
# does not confirm.
ANSWERS_422 = {
    f"post {BASE}/serviceOrder",
    f"post {BASE}/cancelServiceOrder",
    f"post {BASE}/hub",
    "post /provtrack/v1/tmf652/{system}/{token}/listener/{event_type}",
    "post /provtrack/v1/tmf652/{system}/{token}/listener/cancelResourceOrderCreateEvent",
    "post /provtrack/v1/tmf652/{system}/{token}/listener/cancelResourceOrderStateChangeEvent",
}


def test_no_operation_documents_a_422_and_every_one_on_an_id_documents_404(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if f"{method} {path}" not in ANSWERS_422:
                assert "422" not in operation["responses"], f"{method} {path}"
            assert "500" in operation["responses"], f"{method} {path}"
            if "{id}" in path:
                assert "404" in operation["responses"], f"{method} {path}"


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    names = set(re.findall(r'"#/components/schemas/([^"]+)"', text))

    assert names <= document["components"]["schemas"].keys()
    assert '"type": "null"' not in text


def test_an_item_schema_says_what_each_action_needs(document: dict[str, Any]) -> None:
    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/ServiceOrder_Create", "components": document["components"]}
    )
    no_spec = order_body(item("1", action="add", spec="x") | {"service": {"name": "x"}})
    no_service_id = order_body(item("1", action="delete") | {"service": {"name": "x"}})
    empty_id = order_body(item(""))

    assert validator.is_valid(order_body())
    assert not validator.is_valid(no_spec)
    assert not validator.is_valid(no_service_id)
    assert not validator.is_valid(empty_id)
    assert not validator.is_valid(order_body(item("1", action="replace")))
    assert not validator.is_valid(order_body(serviceOrderItem=[]))


def test_served_orders_and_tasks_validate_against_the_tmf641_schema(
    client: TestClient, specification: dict[str, Any]
) -> None:
    # The v4.1 schema less the relaxations docs/tmf641.md lists (and the test above keeps true):
    # a related party by name and role, an item reference by itemId, `acknowledged` tasks.
    definitions = json.loads(json.dumps(specification["definitions"]))
    del definitions["RelatedParty"]["required"]
    del definitions["ServiceOrderItemRef"]["required"]
    definitions["TaskStateType"]["enum"].append("acknowledged")

    def validator(name: str) -> jsonschema_rs.Draft4Validator:
        return jsonschema_rs.Draft4Validator({"$ref": f"#/definitions/{name}", "definitions": definitions})

    order = create_order(client, order_body())
    task = client.post(CANCELS, json={"serviceOrder": {"id": order["id"]}, "cancellationReason": "test"})
    cancelled = client.get(f"{ORDERS}/{order['id']}").json()

    assert validator("ServiceOrder").is_valid(order)
    assert validator("ServiceOrder").is_valid(cancelled), list(
        validator("ServiceOrder").iter_errors(cancelled)
    )
    assert task.status_code == 201
    assert task.json()["state"] == "done"
    assert validator("CancelServiceOrder").is_valid(task.json())


def test_options_answers_with_allow_and_405_lists_every_method(client: TestClient) -> None:
    options = client.options(f"{ORDERS}/some-id")
    refused = client.put(f"{ORDERS}/some-id", json={})

    assert options.status_code == 204
    assert options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH"
    assert refused.status_code == 405
    assert refused.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH"
    assert refused.json()["code"] == "METHOD_NOT_ALLOWED"


def test_head_answers_where_get_does_with_its_headers_and_no_body(client: TestClient) -> None:
    order = create_order(client, order_body())

    listed = client.head(ORDERS)
    one = client.head(f"{ORDERS}/{order['id']}")
    missing = client.head(f"{ORDERS}/no-such-order")

    assert listed.status_code == 200
    assert listed.headers["x-total-count"] == "1"
    assert listed.content == b""
    assert one.status_code == 200
    assert int(one.headers["content-length"]) == len(client.get(f"{ORDERS}/{order['id']}").content)
    assert missing.status_code == 404


def test_the_docs_pages_load_their_scripts_from_the_server_not_a_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)

        assert html.status_code == 200
        assert "cdn" not in html.text.lower()
        assert "fonts.googleapis" not in html.text
        assert assets, page
        for asset in assets:
            assert asset.startswith("/docs/assets/"), asset
            loaded = client.get(asset)
            assert loaded.status_code == 200, asset
            assert len(loaded.content) > 1000, asset


def test_the_published_enumerations_are_the_life_cycles_states() -> None:
    assert {s.value for s in schemas.ServiceOrderStateType} == {s.value for s in OrderState}
    assert {s.value for s in schemas.ServiceOrderItemStateType} == {s.value for s in OrderState}
    assert {s.value for s in schemas.TaskStateType} == {s.value for s in TaskState}
