"""The work API (/provtrack/v1, docs/coordination.md): manual tasks, work group queues, and the
listener partners notify. The person acting is named by the `X-Actor` header."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provtrack.api.errors import ApiError
from provtrack.api.extension_schemas import (
    InformationRequest,
    PartnerOrderEvent,
    TaskAssignment,
    TaskCompletion,
    TaskFailure,
    TaskHandBack,
    TaskNote,
    WorkGroupDefinition,
)
from provtrack.api.http import base_url, context, json_response, read_json
from provtrack.api.openapi import answers, body, header, page_answers, task_list_parameters
from provtrack.api.security import require_listener_token
from provtrack.domain.catalog import Catalog
from provtrack.domain.partners import partner_subscription_key
from provtrack.domain.tasks import TASK_FINAL, TaskState
from provtrack.services import partners, tasks
from provtrack.services.ports import TaskSelection

PREFIX = "/provtrack/v1"
router = APIRouter(prefix=PREFIX, tags=["provtrack work queues and partners (extension)"])
OPEN_STATES = frozenset(TaskState) - TASK_FINAL
ACTOR = header("X-Actor", "the member acting (required to claim, start, complete, fail, ask)")
ACTS = answers(200, 400, 404, 409, 413)  # a task action: refused by the task table or capacity: 409


def _action(model: Any = None, *, required: bool = True) -> dict[str, Any]:
    declared: dict[str, Any] = {"parameters": [ACTOR]}
    if model is not None:
        declared.update(body(model, required=required))
    return declared


def install_tasks(app: FastAPI) -> None:
    app.include_router(router)


def _catalog(request: Request) -> Catalog | None:
    catalog: Catalog | None = request.app.state.catalog
    return catalog


def _with_links(request: Request, task: dict[str, Any]) -> dict[str, Any]:
    root = f"{base_url(request)}"
    task["href"] = f"{root}{PREFIX}/task/{task['id']}"
    task["serviceOrder"]["href"] = (
        f"{root}/tmf-api/serviceOrdering/v4/serviceOrder/{task['serviceOrder']['id']}"
    )
    return task


def _task_response(request: Request, task: dict[str, Any]) -> Response:
    return json_response(orjson.dumps(_with_links(request, task)).decode())


def _actor(request: Request, *, person: bool) -> str:
    actor = request.headers.get("X-Actor")
    if person and not actor:
        raise ApiError(
            400, "MISSING_ACTOR", "Who acts is unknown", "the X-Actor header must name the member acting"
        )
    return actor or "operator"


async def _body(request: Request) -> dict[str, Any]:
    if not await request.body():
        return {}
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "the body must be a JSON object")
    return body


def _selection(request: Request, **fixed: Any) -> TaskSelection:
    params = request.query_params
    # `state=a,b` and `state=a&state=b` (as generated clients send a list) select alike.
    wanted = [s.strip() for value in params.getlist("state") for s in value.split(",") if s.strip()]
    states: frozenset[TaskState] = frozenset()
    if wanted:
        try:
            states = frozenset(TaskState(s) for s in wanted)
        except ValueError:
            known = ", ".join(s.value for s in TaskState)
            raise ApiError(
                400, "INVALID_QUERY", "Invalid query parameter", f"state: one of {known}"
            ) from None
    try:
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
    except ValueError:
        raise ApiError(
            400, "INVALID_QUERY", "Invalid query parameter", "offset and limit are numbers"
        ) from None
    if offset < 0 or not 1 <= limit <= 1000:
        raise ApiError(400, "INVALID_QUERY", "Invalid query parameter", "offset >= 0, 1 <= limit <= 1000")
    selection = TaskSelection(
        work_group=params.get("workGroup"),
        states=states,
        assignee=params.get("assignee"),
        order_id=params.get("serviceOrderId"),
        offset=offset,
        limit=limit,
    )
    return dataclasses.replace(selection, **fixed)


def _list(request: Request, selection: TaskSelection) -> Response:
    now = request.app.state.clock()
    total, found = tasks.list_tasks(request.app.state.store, selection, now=now)
    body = "[" + ",".join(orjson.dumps(_with_links(request, t)).decode() for t in found) + "]"
    headers = {"X-Total-Count": str(total), "X-Result-Count": str(len(found))}
    complete = selection.offset == 0 and len(found) == total
    return json_response(body, 200 if complete else 206, headers)


@router.get(
    "/task",
    summary="Manual tasks in queue order: priority, jeopardy (worst first), due date",
    responses=page_answers(None),
    openapi_extra=task_list_parameters(with_work_group=True),
)
def list_tasks(request: Request) -> Response:
    return _list(request, _selection(request))


@router.get(
    "/task/{id}", summary="One manual task, with its expected start and finish", responses=answers(200, 404)
)
def get_task(id: str, request: Request) -> Response:
    return _task_response(request, tasks.get_task(request.app.state.store, id, now=request.app.state.clock()))


async def _act(
    request: Request, use_case: Callable[..., dict[str, Any]], *args: Any, person: bool
) -> Response:
    ctx = context(request, actor=_actor(request, person=person), person=True)
    task = await run_in_threadpool(
        use_case, request.app.state.store, *args, ctx=ctx, catalog=_catalog(request)
    )
    return _task_response(request, task)


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    return _required_text(body, name)


def _required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "INVALID_VALUE", "Invalid request", f"{name}: a non-empty text is required")
    return value


@router.post(
    "/task/{id}/assign",
    summary="Give a queued task to a member (`assignee`)",
    responses=ACTS,
    openapi_extra=_action(TaskAssignment),
)
async def assign_task(id: str, request: Request) -> Response:
    assignee = _required_text(await _body(request), "assignee")
    return await _act(request, tasks.assign_task, id, assignee, person=False)


@router.post(
    "/task/{id}/reassign",
    summary="Hand a task back from its holder and give it to `assignee`",
    responses=ACTS,
    openapi_extra=_action(TaskAssignment),
)
async def reassign_task(id: str, request: Request) -> Response:
    assignee = _required_text(await _body(request), "assignee")
    ctx = context(request, actor=_actor(request, person=False), person=True)
    task = await run_in_threadpool(
        tasks.assign_task,
        request.app.state.store,
        id,
        assignee,
        ctx=ctx,
        catalog=_catalog(request),
        reassign=True,
    )
    return _task_response(request, task)


@router.post(
    "/task/{id}/claim",
    summary="Take a queued task (the member is X-Actor); no body",
    responses=answers(200, 400, 404, 409),
    openapi_extra=_action(),
)
async def claim_task(id: str, request: Request) -> Response:
    return await _act(request, tasks.claim_task, id, person=True)


@router.post(
    "/task/{id}/start",
    summary="Start the task you hold (not before its appointment, within capacity); no body",
    responses=answers(200, 400, 404, 409),
    openapi_extra=_action(),
)
async def start_task(id: str, request: Request) -> Response:
    return await _act(request, tasks.start_task, id, person=True)


@router.post(
    "/task/{id}/note",
    summary="Add a note (`text`) to a task",
    responses=ACTS,
    openapi_extra=_action(TaskNote),
)
async def note_task(id: str, request: Request) -> Response:
    text = _required_text(await _body(request), "text")
    return await _act(request, tasks.note_task, id, text, person=False)


@router.post(
    "/task/{id}/complete",
    summary="Complete the task you hold, with its `checklist` filled in",
    responses=ACTS,
    openapi_extra=_action(TaskCompletion, required=False),
)
async def complete_task(id: str, request: Request) -> Response:
    checklist = (await _body(request)).get("checklist")
    return await _act(request, tasks.complete_task, id, checklist, person=True)


@router.post(
    "/task/{id}/fail",
    summary="Give the task up with a `reasonCode` (and a `reason`)",
    responses=ACTS,
    openapi_extra=_action(TaskFailure),
)
async def fail_task(id: str, request: Request) -> Response:
    body = await _body(request)
    reason = _text(body, "reason", required=False)
    return await _act(request, tasks.fail_task, id, body.get("reasonCode"), reason, person=True)


@router.post(
    "/task/{id}/handBack",
    summary="Put the task back in its group's queue (optional `reason`)",
    responses=ACTS,
    openapi_extra=_action(TaskHandBack, required=False),
)
async def hand_back_task(id: str, request: Request) -> Response:
    reason = _text(await _body(request), "reason", required=False)
    return await _act(request, tasks.hand_back_task, id, reason, person=False)


@router.post(
    "/task/{id}/requestInformation",
    summary="Ask the customer for service characteristics (`informationRequired`); the order goes pending",
    responses=ACTS,
    openapi_extra=_action(InformationRequest),
)
async def request_information(id: str, request: Request) -> Response:
    wanted = (await _body(request)).get("informationRequired")
    return await _act(request, tasks.request_information, id, wanted, person=True)


@router.get(
    "/workGroup", summary="The work groups: the catalog's, and those defined here", responses=answers(200)
)
def list_work_groups(request: Request) -> Response:
    groups = tasks.list_work_groups(request.app.state.store, _catalog(request))
    return json_response(orjson.dumps(groups).decode())


@router.put(
    "/workGroup/{name}",
    summary="Define a work group, or redefine one of the catalog's (members, capacity, working hours)",
    responses=answers(200, 400, 413),
    openapi_extra={"parameters": [ACTOR], **body(WorkGroupDefinition)},
)
async def define_work_group(name: str, request: Request) -> Response:
    body = await _body(request)
    ctx = context(request, actor=_actor(request, person=False), person=True)
    group = await run_in_threadpool(tasks.define_work_group, request.app.state.store, name, body, ctx=ctx)
    return json_response(orjson.dumps(group).decode())


@router.get(
    "/workGroup/{name}",
    summary="A work group: members, capacity, working hours, load",
    responses=answers(200, 404),
)
def get_work_group(name: str, request: Request) -> Response:
    view = tasks.work_group_view(request.app.state.store, _catalog(request), name)
    return json_response(orjson.dumps(view).decode())


@router.get(
    "/workGroup/{name}/queue",
    summary="The group's open tasks, most urgent first",
    responses=page_answers(None, 404),
    openapi_extra=task_list_parameters(with_work_group=False),
)
def work_queue(name: str, request: Request) -> Response:
    tasks.work_group_view(request.app.state.store, _catalog(request), name)  # 404 for an unknown group
    selection = _selection(request, work_group=name)
    if not selection.states:
        selection = _selection(request, work_group=name, states=OPEN_STATES)
    return _list(request, selection)


@router.post(
    "/partner/{partner}/{token}/listener",
    status_code=204,
    summary="TMF641 listener for a partner's events",
    responses=answers(204, 400, 401, 404, 413),
    openapi_extra=body(PartnerOrderEvent),
)
@router.post(
    "/partner/{partner}/{token}/listener/{event_type}",
    status_code=204,
    summary="TMF641 listener (per event name)",
    responses=answers(204, 400, 401, 404, 413),
    openapi_extra=body(PartnerOrderEvent),
)
async def partner_listener(
    partner: str, token: str, request: Request, event_type: str | None = None
) -> Response:
    """A partner's notification only makes provtrack read the partner's order now: nothing in it
    is taken on trust. Its callback URL carries the token provtrack registered at the partner."""
    catalog = _catalog(request)
    if catalog is None or partner not in catalog.partners:
        raise ApiError(404, "NOT_FOUND", "Unknown partner", f"no partner {partner[:100]!r} in the catalog")
    await require_listener_token(request, partner_subscription_key(partner), token, who=partner)
    event = await read_json(request)
    order = (event.get("event") or {}).get("serviceOrder") if isinstance(event, dict) else None
    if not isinstance(order, dict):
        raise ApiError(400, "INVALID_VALUE", "Invalid request", "event.serviceOrder: an object is required")
    catalog = _catalog(request)
    if catalog is None or partner not in catalog.partners:
        raise ApiError(404, "NOT_FOUND", "Unknown partner", f"no partner {partner!r} in the catalog")
    await run_in_threadpool(
        partners.nudge, request.app.state.store, partner, order, now=request.app.state.clock()
    )
    return Response(status_code=204)
