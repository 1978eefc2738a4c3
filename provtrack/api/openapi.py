"""The OpenAPI document: what each operation takes and answers, strict enough to generate clients from.

The routes read their bodies raw (extension attributes must stay as sent), so FastAPI cannot see what
they take: each route declares it here, with `body`, `list_parameters` and `answers`. `install_openapi`
then turns FastAPI's document into the published one: the TMF641 components under the specification's
own names, no `null` where TMF641 has none (an attribute is sent or left out), no 422 (a validation
failure is a TMF630 400), and `limit` bounded by this server's maximum. `docs/tmf641.md` lists where
the document deliberately differs from the TMF641 v4.1 specification; a test keeps that list true.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel

from provtrack.api import extension_schemas, schemas
from provtrack.api.security import document_security

_ATTRIBUTE = r"@?[A-Za-z_][A-Za-z0-9_]*(\.@?[A-Za-z_][A-Za-z0-9_]*)*"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"

# Python model name -> the name TMF641 v4.1 gives the component (where the two differ).
COMPONENT_NAMES = {
    "ServiceOrderCreate": "ServiceOrder_Create",
    "ServiceOrderUpdate": "ServiceOrder_Update",
    "CancelServiceOrderCreate": "CancelServiceOrder_Create",
    "ServiceOrderItemCreate": "ServiceOrderItem_Create",
}

# Every model a route names in `body` (and the error body): published as components, since no route
# lets FastAPI parse them.
BODY_MODELS: tuple[type[BaseModel], ...] = (
    schemas.Error,
    schemas.ServiceOrderCreate,
    schemas.ServiceOrderUpdate,
    schemas.CancelServiceOrderCreate,
    schemas.EventSubscriptionInput,
    extension_schemas.SecretRotation,
    extension_schemas.DeadLetterReplay,
    extension_schemas.ActivitySkip,
    extension_schemas.ActivityFailure,
    extension_schemas.ResourceOrderEvent,
    extension_schemas.CancelResourceOrderEvent,
    extension_schemas.ProductOrderEvent,
    extension_schemas.PartnerOrderEvent,
    extension_schemas.PartnerCancelEvent,
    extension_schemas.TaskAssignment,
    extension_schemas.TaskNote,
    extension_schemas.TaskCompletion,
    extension_schemas.TaskFailure,
    extension_schemas.TaskHandBack,
    extension_schemas.InformationRequest,
    extension_schemas.WorkGroupDefinition,
)

_DESCRIPTIONS = {
    200: "Success",
    201: "Created",
    204: "Done; no content",
    206: "Partial content: one page of the matches",
    304: "Not modified: If-None-Match names the version the client has",
    400: "Bad request: the message names the offending attribute or parameter",
    401: "No bearer token, or one refused (WWW-Authenticate says which)",
    403: "The token lacks the scope the operation needs",
    404: "Not found",
    409: "Conflict: a change the order's life cycle or current state does not allow",
    412: "If-Match names a version the order no longer has: nothing changed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Idempotency-Key used for another request, or a notification its system does not confirm",
    500: "Internal error",
    503: "Unavailable",
}
_ERROR = {"$ref": "#/components/schemas/Error"}
_COUNT_HEADERS = {
    "X-Total-Count": {"description": "how many resources match", "schema": {"type": "integer"}},
    "X-Result-Count": {"description": "how many are in this answer", "schema": {"type": "integer"}},
}


def answers(*statuses: int, model: Any = None, description: str | None = None) -> dict[int | str, Any]:
    """The statuses an operation answers, success first (with its `model`, if it has a body), then
    the errors it can give; every operation can answer 500."""
    success, *errors = statuses
    declared: dict[int | str, Any] = {success: {"description": description or _DESCRIPTIONS[success]}}
    if model is not None:
        declared[success]["model"] = model
    for status in (*errors, 500):
        declared[status] = {"description": _DESCRIPTIONS[status], "content": {JSON: {"schema": _ERROR}}}
    return declared


def page_answers(model: type[BaseModel] | None, *errors: int) -> dict[int | str, Any]:
    """A list operation's answers: 200 (every match) or 206 (a page), both with the counts."""
    declared = answers(200, 400, *errors, model=None if model is None else list[model])  # type: ignore[valid-type]
    declared[200]["headers"] = _COUNT_HEADERS
    declared[206] = {"description": _DESCRIPTIONS[206], "headers": _COUNT_HEADERS}
    if model is not None:
        declared[206]["content"] = {JSON: {"schema": {"type": "array", "items": _ref(model)}}}
    return declared


def body(
    model: type[BaseModel], *, required: bool = True, media_types: Sequence[str] = (JSON,)
) -> dict[str, Any]:
    """`openapi_extra` declaring a request body of `model` (one of BODY_MODELS)."""
    assert model in BODY_MODELS, f"{model.__name__} is not in BODY_MODELS"
    content = {media_type: {"schema": _ref(model)} for media_type in media_types}
    return {"requestBody": {"required": required, "content": content}}


def patch_body(model: type[BaseModel]) -> dict[str, Any]:
    """A PATCH body: a merge patch of `model` (RFC 7396, the media type TMF641 makes mandatory).

    `application/json` (read as a merge patch) and JSON Patch (RFC 6902) are accepted too but said in
    the description only: a body declared under more than one media type makes openapi-python-client
    0.29 generate a PATCH that fails on every call."""
    return body(model, media_types=(MERGE_PATCH,))


@dataclass(frozen=True, slots=True)
class Filter:
    """A TMF630 attribute filter a list operation declares: `name=value` (`a,b` for either), and for
    date-times also `name.gt`, `.gte`, `.lt`, `.lte`."""

    name: str
    kind: Literal["text", "date-time", "enum"] = "text"
    enum: type[StrEnum] | None = None


ORDER_FILTERS = (
    Filter("state", "enum", schemas.ServiceOrderStateType),
    Filter("externalId"),
    Filter("category"),
    Filter("priority"),
    Filter("orderDate", "date-time"),
    Filter("requestedStartDate", "date-time"),
    Filter("requestedCompletionDate", "date-time"),
    Filter("expectedCompletionDate", "date-time"),
    Filter("startDate", "date-time"),
    Filter("completionDate", "date-time"),
    Filter("serviceOrderItem.state", "enum", schemas.ServiceOrderItemStateType),
    Filter("serviceOrderItem.service.id"),
    Filter("serviceOrderItem.service.serviceSpecification.id"),
    Filter("relatedParty.id"),
    Filter("relatedParty.role"),
    Filter("orderRelationship.id"),
)
TASK_FILTERS = (
    Filter("state", "enum", schemas.TaskStateType),
    Filter("serviceOrder.id"),
    Filter("requestedCancellationDate", "date-time"),
    Filter("effectiveCancellationDate", "date-time"),
)
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


def fields_parameter() -> dict[str, Any]:
    return _query(
        "fields",
        {"type": "string", "pattern": f"^(none|{_ATTRIBUTE}(,{_ATTRIBUTE})*)$"},
        "Comma-separated attributes to return (dotted paths go deeper); `id` and `href` always "
        "come; `none` returns only them",
    )


def retrieve_parameters() -> dict[str, Any]:
    """`openapi_extra` of a GET by id: `fields`."""
    return {"parameters": [fields_parameter()]}


def list_parameters(filters: Sequence[Filter]) -> dict[str, Any]:
    """`openapi_extra` of a list operation: fields, paging, sort and its attribute filters. Any other
    first-level or dotted attribute filters too (docs/tmf641.md); these are the ones worth a name."""
    parameters = [
        fields_parameter(),
        _query("offset", {"type": "integer", "minimum": 0}, "Index of the first match to return"),
        _query("limit", {"type": "integer", "minimum": 1}, "How many matches to return at most"),
        _query(
            "sort",
            {"type": "string", "pattern": f"^[+-]?{_ATTRIBUTE}(,[+-]?{_ATTRIBUTE})*$"},
            "Attributes to sort by, `-` for descending (`-orderDate,externalId`); newest first by default",
        ),
    ]
    for found in filters:
        parameters.extend(_filter_parameters(found))
    return {"parameters": parameters}


def task_list_parameters(*, with_work_group: bool) -> dict[str, Any]:
    """`openapi_extra` of the work API's task lists (docs/coordination.md)."""
    from provtrack.domain.tasks import TaskState

    states = {
        "type": "array",
        "items": {"type": "string", "enum": [s.value for s in TaskState]},
        "minItems": 1,
    }
    parameters = [
        _query("state", states, "the task is in one of these states", explode=False),
        _query("assignee", {"type": "string", "minLength": 1}, "the member holding the task"),
        _query("serviceOrderId", {"type": "string", "minLength": 1}, "the order the task is for"),
        _query("offset", {"type": "integer", "minimum": 0}, "Index of the first task to return"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "How many tasks at most"),
    ]
    if with_work_group:
        parameters.insert(0, _query("workGroup", {"type": "string", "minLength": 1}, "the task's group"))
    return {"parameters": parameters}


def _filter_parameters(found: Filter) -> list[dict[str, Any]]:
    if found.kind == "enum":
        assert found.enum is not None
        values = {"$ref": f"#/components/schemas/{found.enum.__name__}"}
        schema = {"type": "array", "items": values, "minItems": 1}
        equal = _query(found.name, schema, f"{found.name} is one of these", explode=False)
        return [equal]
    if found.kind == "date-time":
        value = {"type": "string", "format": "date-time"}
        named = {"gt": "after", "gte": "at or after", "lt": "before", "lte": "at or before"}
        return [
            _query(found.name, value, f"{found.name} equals"),
            *(_query(f"{found.name}.{op}", value, f"{found.name} {named[op]}") for op in RANGE_OPERATORS),
        ]
    text = {"type": "string", "minLength": 1}
    return [_query(found.name, text, f"{found.name} equals (`a,b`: either; quote a value with a comma)")]


def _query(name: str, schema: dict[str, Any], description: str, *, explode: bool = True) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    if not explode:
        parameter.update(style="form", explode=False)
    return parameter


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


# --- the document -----------------------------------------------------------------------------------


def install_openapi(app: FastAPI, *, max_limit: int) -> None:
    """Replace FastAPI's document with the published one (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app, max_limit=max_limit)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_document(app: FastAPI, *, max_limit: int) -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi
    from pydantic.json_schema import models_json_schema

    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        separate_input_output_schemas=False,
    )
    _, extra = models_json_schema(
        [(m, "validation") for m in BODY_MODELS], ref_template="#/components/schemas/{model}"
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in extra.get("$defs", {}).items():
        components.setdefault(name, schema)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            operation["responses"].pop("422", None)
            for parameter in operation.get("parameters", ()):
                if path.startswith("/tmf-api/") and parameter["name"] == "limit":
                    parameter["schema"]["maximum"] = max_limit
    _name_operations(app, document)
    renamed: dict[str, Any] = _without_nulls(_renamed(document))
    document_security(renamed)
    return renamed


def _name_operations(app: FastAPI, document: dict[str, Any]) -> None:
    """operationId: the route's own (the TMF641 ones are the specification's), else its function's
    name in camelCase (`retry_activity` -> `retryActivity`): generated clients name methods after it."""
    from provtrack.api.methods import routes_of

    for route in routes_of(app):
        if not route.in_schema:
            continue
        first, *rest = route.name.split("_")
        name = route.operation_id or first + "".join(word.capitalize() for word in rest)
        for method in route.methods:
            document["paths"][route.path][method.lower()]["operationId"] = name


def _renamed(value: Any) -> Any:
    """Components and references under the TMF641 names."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                prefix, _, name = item.rpartition("/")
                item = f"{prefix}/{COMPONENT_NAMES.get(name, name)}"
            out[COMPONENT_NAMES.get(key, key) if isinstance(item, dict) else key] = _renamed(item)
        return out
    if isinstance(value, list):
        return [_renamed(item) for item in value]
    return value


def _without_nulls(value: Any) -> Any:
    """`anyOf: [X, {type: null}]` -> X and no `default: null`: a TMF641 attribute is sent or left out,
    never null (the v4.1 schema has no nullable attribute)."""
    if isinstance(value, dict):
        options = value.get("anyOf")
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            merged = {k: v for k, v in value.items() if k != "anyOf"}
            if len(rest) == 1:
                merged = {**rest[0], **merged}
            else:
                merged["anyOf"] = rest
            value = merged
        return {k: _without_nulls(v) for k, v in value.items() if not (k == "default" and v is None)}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value
