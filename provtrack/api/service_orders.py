"""TMF641 v4.1 `/serviceOrder` and `/cancelServiceOrder` resources."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.api import schemas
from provtrack.api.errors import ApiError
from provtrack.api.http import (
    base_url,
    call_store,
    check_types,
    context,
    fields_of,
    json_response,
    list_query,
    page_response,
    read_json,
    render,
)
from provtrack.api.openapi import (
    ORDER_FILTERS,
    TASK_FILTERS,
    answers,
    body,
    fields_parameter,
    list_parameters,
    page_answers,
    patch_body,
    retrieve_parameters,
)
from provtrack.api.operations import ORDERS_CREATED
from provtrack.domain.clock import InvalidDateTime, normalise_datetime
from provtrack.domain.query import Query
from provtrack.domain.states import ACCEPTED, OrderState, TaskState
from provtrack.services import cancellation, events, orders, revisions

BASE_PATH = "/tmf-api/serviceOrdering/v4"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

router = APIRouter(prefix=BASE_PATH, tags=["TMF641 service ordering"])

ORDER_STATES = tuple(s.value for s in OrderState)
TASK_STATES = (*(s.value for s in TaskState), ACCEPTED)
AS_OF = {
    "name": "asOf",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "format": "date-time"},
    "description": "provtrack extension: the order as it was at that moment",
}
LIST_DESCRIPTION = (
    "TMF630 query: `fields=a,b.c`, `offset`, `limit`, `sort=-orderDate`, and attribute filters "
    "(`state=inProgress,held`, `orderDate.gt=2026-11-01`). Any first-level or dotted attribute "
    "filters, with `.eq .ne .gt .gte .lt .lte`; the parameters below are the common ones. "
    "200 when the answer holds every match, 206 when it is a page."
)


def _store(request: Request) -> Any:
    return request.app.state.store


def _url(request: Request, collection: str) -> str:
    return f"{base_url(request)}{BASE_PATH}/{collection}"


@router.post(
    "/serviceOrder",
    status_code=201,
    summary="Creates a ServiceOrder",
    operation_id="createServiceOrder",
    responses=answers(201, 400, 413, 503, model=schemas.ServiceOrder),
    openapi_extra=body(schemas.ServiceOrderCreate),
)
async def create_service_order(request: Request) -> Response:
    body = await read_json(request)
    check_types(schemas.ServiceOrderCreate, body)
    order = await call_store(
        request,
        orders.create_order,
        body,
        write=True,
        together=True,
        ctx=context(request),
        catalog_configured=not request.app.state.orders_need_catalog,
    )
    ORDERS_CREATED.inc()
    href = f"{_url(request, 'serviceOrder')}/{order.id}"
    document = orjson.dumps(order.to_document()).decode()
    return json_response(render(document, href, fields_of(request)), 201, {"Location": href})


@router.get(
    "/serviceOrder",
    summary="List or find ServiceOrder objects",
    description=LIST_DESCRIPTION,
    operation_id="listServiceOrder",
    responses=page_answers(schemas.ServiceOrder),
    openapi_extra=list_parameters(ORDER_FILTERS),
)
def list_service_orders(request: Request) -> Response:
    query = list_query(request, enums={("state",): ORDER_STATES})
    page = orders.list_orders(_store(request), query)
    return page_response(page, query, _url(request, "serviceOrder"))


@router.get(
    "/serviceOrder/{id}",
    summary="Retrieves a ServiceOrder by ID",
    operation_id="retrieveServiceOrder",
    responses=answers(200, 400, 404, model=schemas.ServiceOrder),
    openapi_extra={"parameters": [fields_parameter(), AS_OF]},
)
async def retrieve_service_order(id: str, request: Request) -> Response:
    as_of = request.query_params.get("asOf")
    if as_of is None:
        document = await call_store(request, orders.get_order_json, id)
    else:
        try:
            moment = normalise_datetime(as_of)
        except InvalidDateTime as exc:
            raise ApiError(400, "INVALID_QUERY", "Invalid query parameter", f"asOf: {exc}") from None
        document = await run_in_threadpool(events.order_as_of, _store(request), id, moment)
    return json_response(render(document, f"{_url(request, 'serviceOrder')}/{id}", fields_of(request)))


@router.patch(
    "/serviceOrder/{id}",
    summary="Updates partially a ServiceOrder",
    description=(
        f"`{MERGE_PATCH}` (RFC 7396; also accepted as `application/json`) or `{JSON_PATCH}` (RFC 6902)."
    ),
    operation_id="patchServiceOrder",
    responses=answers(200, 400, 404, 409, 413, 415, model=schemas.ServiceOrder),
    openapi_extra=patch_body(schemas.ServiceOrderUpdate),
)
async def patch_service_order(id: str, request: Request) -> Response:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (MERGE_PATCH, JSON_PATCH, "application/json"):
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Unsupported media type",
            f"PATCH takes {MERGE_PATCH} or {JSON_PATCH}, not {media_type or 'a body without Content-Type'}",
        )
    patch = await read_json(request)
    json_patch = media_type == JSON_PATCH
    if not json_patch:
        if not isinstance(patch, dict):
            raise ApiError(400, "INVALID_PATCH", "Invalid patch document", "a merge patch is a JSON object")
        check_types(schemas.ServiceOrderUpdate, {k: v for k, v in patch.items() if v is not None})
        if patch.get("href") == f"{_url(request, 'serviceOrder')}/{id}":
            del patch["href"]  # a client sending back the order as it read it: href unchanged
    order = await call_store(
        request,
        revisions.patch_order,
        id,
        patch,
        json_patch=json_patch,
        write=True,
        ctx=context(request),
        catalog=request.app.state.catalog,
    )
    document = orjson.dumps(order.to_document()).decode()
    return json_response(render(document, f"{_url(request, 'serviceOrder')}/{id}", fields_of(request)))


@router.delete(
    "/serviceOrder/{id}",
    status_code=204,
    summary="Deletes a ServiceOrder (administration only)",
    operation_id="deleteServiceOrder",
    responses=answers(204, 404, 409),
)
def delete_service_order(id: str, request: Request) -> Response:
    orders.delete_order(_store(request), id, ctx=context(request))
    return Response(status_code=204)


@router.post(
    "/cancelServiceOrder",
    status_code=201,
    summary="Creates a CancelServiceOrder",
    description=(
        "The task is `acknowledged`, then `inProgress` while the order is assessed against its point "
        "of no return and the cancellation is carried out (in-flight resource orders cancelled at their "
        "systems, done activities undone), then `done` or `terminatedWithError`. A "
        "`requestedCancellationDate` in the future is honoured then. Preview it at "
        "`/provtrack/v1/serviceOrder/{id}/cancellationImpact`; see docs/cancellation.md."
    ),
    operation_id="createCancelServiceOrder",
    responses=answers(201, 400, 404, 409, 413, model=schemas.CancelServiceOrder),
    openapi_extra=body(schemas.CancelServiceOrderCreate),
)
async def create_cancel_service_order(request: Request) -> Response:
    body = await read_json(request)
    check_types(schemas.CancelServiceOrderCreate, body)
    task = await call_store(
        request,
        cancellation.request_cancellation,
        body,
        write=True,
        ctx=context(request),
        catalog=request.app.state.catalog,
    )
    href = f"{_url(request, 'cancelServiceOrder')}/{task.id}"
    document = orjson.dumps(task.to_document()).decode()
    return json_response(render(document, href, fields_of(request)), 201, {"Location": href})


@router.get(
    "/cancelServiceOrder",
    summary="List or find CancelServiceOrder objects",
    description=LIST_DESCRIPTION,
    operation_id="listCancelServiceOrder",
    responses=page_answers(schemas.CancelServiceOrder),
    openapi_extra=list_parameters(TASK_FILTERS),
)
def list_cancel_service_orders(request: Request) -> Response:
    query = accepted_as_acknowledged(list_query(request, enums={("state",): TASK_STATES}))
    page = orders.list_tasks(_store(request), query)
    return page_response(page, query, _url(request, "cancelServiceOrder"))


@router.get(
    "/cancelServiceOrder/{id}",
    summary="Retrieves a CancelServiceOrder by ID",
    operation_id="retrieveCancelServiceOrder",
    responses=answers(200, 400, 404, model=schemas.CancelServiceOrder),
    openapi_extra=retrieve_parameters(),
)
async def retrieve_cancel_service_order(id: str, request: Request) -> Response:
    document = await call_store(request, orders.get_task_json, id)
    href = f"{_url(request, 'cancelServiceOrder')}/{id}"
    return json_response(render(document, href, fields_of(request)))


def accepted_as_acknowledged(query: Query) -> Query:
    """`state=accepted` (TMF641 v4.1's enum name for the entry state) finds acknowledged tasks."""
    conditions = tuple(
        replace(
            c,
            values=tuple(
                replace(v, text=TaskState.ACKNOWLEDGED.value) if v.text == ACCEPTED else v for v in c.values
            ),
        )
        if c.path == ("state",)
        else c
        for c in query.conditions
    )
    return replace(query, conditions=conditions)
