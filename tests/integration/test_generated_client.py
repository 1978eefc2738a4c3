"""A Python client generated from /openapi.json (openapi-python-client, offline) drives an order over
real HTTP: create, list with a filter, patch, cancel."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from provtrack.bootstrap import Assembly
from provtrack.settings import Settings
from provtrack.simulator.serving import serving_in_thread
from tests.conftest import AS_ADMIN

PACKAGE = "tmf641_client"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """provtrack with the demo catalog and no worker: orders stay `acknowledged`, so they cancel."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'provtrack.db'}", catalog="demo")
    assembly = Assembly.build(settings, migrate=True)
    with serving_in_thread(assembly.app(with_worker=False, authenticator=AS_ADMIN)) as base:
        yield base


@pytest.fixture
def generated(server: str, tmp_path: Path) -> Iterator[ModuleType]:
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(httpx.get(f"{server}/openapi.json").json()))
    config = tmp_path / "config.yaml"
    config.write_text(f"post_hooks: []\nproject_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n")
    out = tmp_path / "generated"
    out.mkdir()
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document)]
    done = subprocess.run(
        [*command, "--config", str(config), "--meta", "none", "--fail-on-warning"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.tmf641_service_ordering.{name}")


def test_a_generated_client_creates_lists_patches_and_cancels_an_order(
    generated: ModuleType, server: str
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    with generated.Client(base_url=server, raise_on_unexpected_status=True) as client:
        _drive_an_order(models, client)


def _drive_an_order(models: Any, client: Any) -> None:
    item = models.ServiceOrderItemCreate(
        id="1",
        action=models.OrderItemActionType.ADD,
        service=models.ServiceRefOrValue(
            service_specification=models.ServiceSpecificationRef(id="ftth-residential"),
            service_characteristic=[models.Characteristic(name="downloadSpeed", value=1000)],
        ),
    )
    body = models.ServiceOrderCreate(service_order_item=[item], external_id="GEN-1", priority="2")

    created = _api("create_service_order").sync(client=client, body=body)
    other = _api("create_service_order").sync(
        client=client, body=models.ServiceOrderCreate(service_order_item=[item], external_id="GEN-2")
    )
    listed = _api("list_service_order").sync_detailed(
        client=client, external_id="GEN-1", state=[models.ServiceOrderStateType.ACKNOWLEDGED], fields="state"
    )
    patched = _api("patch_service_order").sync(
        created.id, client=client, body=models.ServiceOrderUpdate(description="moved to the 3rd floor")
    )
    task = _api("create_cancel_service_order").sync(
        client=client,
        body=models.CancelServiceOrderCreate(
            service_order=models.ServiceOrderRef(id=created.id), cancellation_reason="customer moved"
        ),
    )
    after = _api("retrieve_service_order").sync(created.id, client=client)

    assert isinstance(created, models.ServiceOrder)
    assert created.state == models.ServiceOrderStateType.ACKNOWLEDGED
    assert created.service_order_item[0].state == models.ServiceOrderItemStateType.ACKNOWLEDGED
    assert listed.status_code == 200
    assert [o.id for o in listed.parsed] == [created.id]
    assert other.id != created.id
    assert listed.headers["x-total-count"] == "1"
    assert patched.description == "moved to the 3rd floor"
    assert task.state == models.TaskStateType.DONE
    assert after.state == models.ServiceOrderStateType.CANCELLED
    assert after.cancellation_reason == "customer moved"


def test_a_generated_client_reads_a_tmf630_error(generated: ModuleType, server: str) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    with generated.Client(base_url=server) as client:
        missing = _api("retrieve_service_order").sync("no-such-order", client=client)

    assert isinstance(missing, models.Error)
    assert (missing.code, missing.status) == ("NOT_FOUND", "404")
