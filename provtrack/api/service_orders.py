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
from provtrack.api.etags import etag, not_modified
from provtrack.api.etags import if_match as if_match_check
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
from provtrack.api.idempotency import once
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
from provtrack.api.security import client_filter, principal_of
from provtrack.domain.cancellation import CancelServiceOrder
from provtrack.domain.clock import InvalidDateTime, normalise_datetime
from provtrack.domain.idempotency import Answer
from provtrack.domain.limits import check_order_size
from provtrack.domain.model import ServiceOrder
from provtrack.domain.query import Query
from provtrack.domain.states import ACCEPTED, OrderState, TaskState
from provtrack.services import access, cancellation, events, orders, revisions
from provtrack.services.ports import Guard, OrderNotFound

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


def guard(request: Request, *, if_match: bool = True) -> Guard:
    """The checks on the order a request changes, in its transaction: it must be the caller's (or
    the caller an administrator; else it does not exist), and `If-Match` must name it as it is."""
    principal, matches = principal_of(request), if_match_check(request) if if_match else None

    def check(order: ServiceOrder) -> None:
        if not principal.sees(order.client):
            raise OrderNotFound(order.id)
        if matches is not None:
            matches(order)

    return check


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
    check_order_size(body, request.app.state.limits)
    client, href, fields = principal_of(request).client, _url(request, "serviceOrder"), fields_of(request)
    catalog_configured = not request.app.state.orders_need_catalog

    async def run(then: Any) -> ServiceOrder:
        # Creates arriving together commit together (group commit): answered once durable.
        return await call_store(
            request,
            orders.create_order,
            body,
            write=True,
            together=True,
            ctx=context(request),
            catalog_configured=catalog_configured,
            client=client,
            then=then,
        )

    def answer(order: ServiceOrder) -> Answer:
        headers = {"Location": f"{href}/{order.id}", "ETag": etag(order.version)}
        return Answer(
            201, headers, render(orjson.dumps(order.to_document()).decode(), f"{href}/{order.id}", fields)
        )

    response = await once(request, run, answer)
    if response.status_code == 201 and "idempotent-replayed" not in response.headers:
        ORDERS_CREATED.inc()
    return response


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
    page = orders.list_orders(_store(request), query, client=client_filter(request))
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
    principal = principal_of(request)
    headers = None
    if as_of is None:
        entry = await call_store(request, orders.get_order_entry, id)
        if not principal.sees(entry.client):
            raise OrderNotFound(id)
        if not_modified(request, entry.version):
            return Response(status_code=304, headers={"ETag": etag(entry.version)})
        document, headers = entry.document, {"ETag": etag(entry.version)}
    else:
        try:
            moment = normalise_datetime(as_of)
        except InvalidDateTime as exc:
            raise ApiError(400, "INVALID_QUERY", "Invalid query parameter", f"asOf: {exc}") from None
        await run_in_threadpool(access.check_order, _store(request), principal, id)
        document = await run_in_threadpool(events.order_as_of, _store(request), id, moment)
    href = f"{_url(request, 'serviceOrder')}/{id}"
    return json_response(render(document, href, fields_of(request)), headers=headers)


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
            f"PATCH takes {MERGE_PATCH} or {JSON_PATCH}, not {media_type[:100] or 'a body without Content-Type'}",
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
        limits=request.app.state.limits,
        check=lambda changed: check_types(schemas.ServiceOrderUpdate, changed),
        guard=guard(request),
    )
    document = orjson.dumps(order.to_document()).decode()
    href = f"{_url(request, 'serviceOrder')}/{id}"
    return json_response(render(document, href, fields_of(request)), headers={"ETag": etag(order.version)})


@router.delete(
    "/serviceOrder/{id}",
    status_code=204,
    summary="Deletes a ServiceOrder (administration only)",
    operation_id="deleteServiceOrder",
    responses=answers(204, 404, 409),
)
def delete_service_order(id: str, request: Request) -> Response:
    orders.delete_order(_store(request), id, ctx=context(request), guard=guard(request))
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
    href, fields, owner = (
        _url(request, "cancelServiceOrder"),
        fields_of(request),
        guard(request, if_match=False),
    )

    async def run(then: Any) -> CancelServiceOrder:
        return await call_store(
            request,
            cancellation.request_cancellation,
            body,
            write=True,
            ctx=context(request),
            catalog=request.app.state.catalog,
            guard=owner,
            then=then,
        )

    def answer(task: CancelServiceOrder) -> Answer:
        document = orjson.dumps(task.to_document()).decode()
        return Answer(201, {"Location": f"{href}/{task.id}"}, render(document, f"{href}/{task.id}", fields))

    return await once(request, run, answer)


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
    page = orders.list_tasks(_store(request), query, client=client_filter(request))
    return page_response(page, query, _url(request, "cancelServiceOrder"))


@router.get(
    "/cancelServiceOrder/{id}",
    summary="Retrieves a CancelServiceOrder by ID",
    operation_id="retrieveCancelServiceOrder",
    responses=answers(200, 400, 404, model=schemas.CancelServiceOrder),
    openapi_extra=retrieve_parameters(),
)
async def retrieve_cancel_service_order(id: str, request: Request) -> Response:
    await run_in_threadpool(access.check_task, _store(request), principal_of(request), id)
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
