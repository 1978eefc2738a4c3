"""TMF641 v4.1 resource model as Pydantic models: the OpenAPI document and the type checks of bodies.

Every model allows extra attributes (TMF630's extension pattern: `@type` subclasses add fields). The
models check types, required attributes and enumerations as the v4.1 schema states them, so that a
client generated from the OpenAPI document builds valid orders; the TMF641 rules between fields live
in `provtrack.domain.validation`. `api/openapi.py` publishes a few of them under the specification's
own names (`ServiceOrder_Create`, ...); `docs/tmf641.md` lists where they deliberately differ.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class ServiceOrderStateType(StrEnum):
    """TMF641 v4.1 ServiceOrderStateType (the life cycle: `provtrack.domain.states.OrderState`)."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"


class ServiceOrderItemStateType(StrEnum):
    """TMF641 v4.1 ServiceOrderItemStateType: the same eleven values as the order's."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"


class TaskStateType(StrEnum):
    """CancelServiceOrder states: `acknowledged` where v4.1 says `accepted` (docs/tmf641.md)."""

    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "inProgress"
    DONE = "done"
    TERMINATED_WITH_ERROR = "terminatedWithError"


class OrderItemActionType(StrEnum):
    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    NO_CHANGE = "noChange"


class ServiceStateType(StrEnum):
    FEASIBILITY_CHECKED = "feasibilityChecked"
    DESIGNED = "designed"
    RESERVED = "reserved"
    INACTIVE = "inactive"
    ACTIVE = "active"
    TERMINATED = "terminated"


class TmfModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type_: str | None = Field(default=None, alias="@type")
    base_type: str | None = Field(default=None, alias="@baseType")
    schema_location: str | None = Field(default=None, alias="@schemaLocation")


def _requires(*names: str) -> Callable[[dict[str, Any]], None]:
    """Schema-only `required` (non-empty strings): the document says what the domain's checks enforce,
    and the domain's checks keep their messages (`...id: is required for action add: ...`)."""

    def mark(schema: dict[str, Any]) -> None:
        schema["required"] = sorted({*schema.get("required", ()), *names})
        for name in names:
            schema["properties"][name]["minLength"] = 1

    return mark


class Ref(TmfModel):
    """A reference: `id` names the entity and may not be empty."""

    model_config = ConfigDict(json_schema_extra=_requires("id"))

    id: str | None = None
    href: str | None = None
    name: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class RelatedParty(TmfModel):
    id: str | None = None
    href: str | None = None
    name: str | None = None
    role: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class Note(TmfModel):
    id: str | None = None
    author: str | None = None
    date: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    text: str


class ExternalReference(TmfModel):
    id: str | None = None
    href: str | None = None
    externalReferenceType: str | None = None
    name: str


class Characteristic(TmfModel):
    id: str | None = None
    name: NonEmpty
    valueType: str | None = None
    value: Any = None
    characteristicRelationship: list[dict[str, Any]] | None = None


class ServiceSpecificationRef(Ref):
    version: str | None = None


class ServiceRefOrValue(TmfModel):
    """A service by reference (`id`, for modify and delete) or by value (a specification, for add)."""

    id: str | None = Field(default=None, min_length=1)
    href: str | None = None
    name: str | None = None
    description: str | None = None
    category: str | None = None
    serviceType: str | None = None
    serviceDate: str | None = None
    state: ServiceStateType | None = None
    serviceCharacteristic: list[Characteristic] | None = None
    serviceSpecification: ServiceSpecificationRef | None = None
    supportingService: list[ServiceRefOrValue] | None = None
    supportingResource: list[Ref] | None = None
    serviceRelationship: list[dict[str, Any]] | None = None
    relatedParty: list[RelatedParty] | None = None
    relatedEntity: list[dict[str, Any]] | None = None
    place: list[dict[str, Any]] | None = None
    feature: list[dict[str, Any]] | None = None
    note: list[Note] | None = None
    serviceOrderItem: list[dict[str, Any]] | None = None
    startDate: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    endDate: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    startMode: str | None = None
    hasStarted: bool | None = None
    isBundle: bool | None = None
    isServiceEnabled: bool | None = None
    isStateful: bool | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class ServiceOrderItemRef(TmfModel):
    itemId: NonEmpty
    serviceOrderId: str | None = None
    serviceOrderHref: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class ServiceOrderItemRelationship(TmfModel):
    relationshipType: NonEmpty
    orderItem: ServiceOrderItemRef


class AppointmentRef(TmfModel):
    model_config = ConfigDict(json_schema_extra=_requires("id"))

    id: str | None = None
    href: str | None = None
    description: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class ErrorMessage(TmfModel):
    code: str | None = None
    reason: str | None = None
    message: str | None = None
    status: str | None = None
    referenceError: str | None = None


class ServiceOrderItemErrorMessage(ErrorMessage):
    timestamp: str | None = Field(default=None, json_schema_extra={"format": "date-time"})


class ServiceOrderErrorMessage(ServiceOrderItemErrorMessage):
    serviceOrderItem: list[ServiceOrderItemRef] | None = None


# What each action needs of `service` (domain/validation.py), said in the schema so that a generator
# builds items the server accepts: `add` names a specification, `modify` and `delete` a service.
_ITEM_ACTION_RULES: list[JsonValue] = [
    {
        "if": {"properties": {"action": {"const": "add"}}},
        "then": {
            "properties": {
                "service": {
                    "required": ["serviceSpecification"],
                    "properties": {"serviceSpecification": {"required": ["id"]}},
                }
            }
        },
    },
    {
        "if": {"properties": {"action": {"enum": ["modify", "delete"]}}},
        "then": {"properties": {"service": {"required": ["id"]}}},
    },
]


class ServiceOrderItemCreate(TmfModel):
    """An item as a client sends it: `id` unique within the order, nested items included."""

    model_config = ConfigDict(json_schema_extra={"allOf": _ITEM_ACTION_RULES})

    id: str = Field(min_length=1, description="unique within the order, nested items included")
    action: OrderItemActionType
    quantity: int | None = Field(default=None, ge=1, le=2**31 - 1)  # what a 32-bit client holds
    service: ServiceRefOrValue
    appointment: AppointmentRef | None = None
    serviceOrderItem: list[ServiceOrderItemCreate] | None = None
    serviceOrderItemRelationship: list[ServiceOrderItemRelationship] | None = Field(
        default=None,
        description="`orderItem.itemId` names another item of this order (or, with `serviceOrderId`, "
        "of another order); the relationships may not form a cycle",
    )


class ServiceOrderItem(ServiceOrderItemCreate):
    state: ServiceOrderItemStateType | None = None
    errorMessage: list[ServiceOrderItemErrorMessage] | None = None
    serviceOrderItem: list[ServiceOrderItem] | None = None  # type: ignore[assignment]


class ServiceOrderRelationship(TmfModel):
    """A related order (a TMF622 product order it came from: `relationshipType` e.g. `cross-ref`)."""

    model_config = ConfigDict(json_schema_extra=_requires("id"))

    id: str | None = None
    href: str | None = None
    relationshipType: NonEmpty
    referred_type: str | None = Field(default=None, alias="@referredType")


_DATE_TIME: dict[str, Any] = {"format": "date-time"}
# TMF641 types priority a string; provtrack takes "0" (highest) to "4" (docs/tmf641.md).
_PRIORITY: dict[str, Any] = {"pattern": "^[0-4]$"}


class ServiceOrderCreate(TmfModel):
    """ServiceOrder_Create: what a client sends to POST /serviceOrder."""

    externalId: str | None = None
    priority: str | None = Field(default=None, json_schema_extra=_PRIORITY)
    description: str | None = None
    category: str | None = None
    notificationContact: str | None = None
    requestedStartDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    requestedCompletionDate: str | None = Field(
        default=None,
        json_schema_extra={**_DATE_TIME, "description": "not before requestedStartDate"},
    )
    cancellationDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    cancellationReason: str | None = None
    externalReference: list[ExternalReference] | None = None
    note: list[Note] | None = None
    orderRelationship: list[ServiceOrderRelationship] | None = None
    relatedParty: list[RelatedParty] | None = None
    serviceOrderItem: list[ServiceOrderItemCreate] = Field(min_length=1)


class ServiceOrderJeopardyAlert(TmfModel):
    id: str | None = None
    alertDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    exception: str | None = None
    jeopardyType: str | None = None
    message: str | None = None
    name: str | None = None
    serviceOrderItem: list[ServiceOrderItemRef] | None = None


class ServiceOrderMilestone(TmfModel):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    message: str | None = None
    milestoneDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    status: str | None = None
    serviceOrderItem: list[ServiceOrderItemRef] | None = None


class ServiceOrder(ServiceOrderCreate):
    """ServiceOrder as the server returns it: `id` and `href` always, the rest unless `fields=` leaves
    it out."""

    id: str
    href: str
    state: ServiceOrderStateType | None = None
    orderDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    startDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    completionDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    expectedCompletionDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    jeopardyAlert: list[ServiceOrderJeopardyAlert] | None = None
    milestone: list[ServiceOrderMilestone] | None = None
    errorMessage: list[ServiceOrderErrorMessage] | None = None
    serviceOrderItem: list[ServiceOrderItem] | None = None  # type: ignore[assignment]


class ServiceOrderUpdate(BaseModel):
    """ServiceOrder_Update: the attributes a PATCH may change (merge patch shape)."""

    model_config = ConfigDict(extra="allow")

    description: str | None = None
    externalId: str | None = None
    notificationContact: str | None = None
    priority: str | None = Field(default=None, json_schema_extra=_PRIORITY)
    requestedCompletionDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    requestedStartDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    externalReference: list[ExternalReference] | None = None
    note: list[Note] | None = None
    orderRelationship: list[ServiceOrderRelationship] | None = None
    relatedParty: list[RelatedParty] | None = None
    serviceOrderItem: list[ServiceOrderItem] | None = None
    state: ServiceOrderStateType | None = None


class ServiceOrderRef(Ref):
    pass


class CancelServiceOrderCreate(TmfModel):
    cancellationReason: str | None = None
    requestedCancellationDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    serviceOrder: ServiceOrderRef


class CancelServiceOrder(CancelServiceOrderCreate):
    """A cancel request as the server returns it: `id` and `href` always, the rest unless `fields=`
    leaves it out."""

    id: str
    href: str
    serviceOrder: ServiceOrderRef | None = None  # type: ignore[assignment]
    state: TaskStateType | None = None
    effectiveCancellationDate: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    completionMessage: str | None = None
    errorMessage: ErrorMessage | None = None


class EventSubscriptionInput(BaseModel):
    """POST /hub: where to deliver events, and which (a TMF630 filter over the event)."""

    model_config = ConfigDict(extra="allow")

    callback: str = Field(min_length=1, json_schema_extra={"format": "uri"})
    query: str | None = Field(
        default=None,
        description="TMF630 filter over the event, e.g. "
        "`eventType=ServiceOrderStateChangeEvent&event.serviceOrder.state=completed`",
    )
    deliverTo: Literal["callback", "listener"] | None = Field(
        default=None,
        description="provtrack extension: `callback` (default) posts to the callback as given, "
        "`listener` to `<callback>/listener/<eventName>`",
    )


class EventSubscription(BaseModel):
    """A hub subscription; `secret` (signing key) is in the answer to POST /hub and rotateSecret only."""

    model_config = ConfigDict(extra="allow")

    id: str
    href: str | None = None
    callback: str
    query: str | None = None
    deliverTo: str | None = None
    state: str | None = None
    createdAt: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    secret: str | None = None
    previousSecretValidUntil: str | None = Field(default=None, json_schema_extra=_DATE_TIME)
    disabledReason: str | None = None


class Error(TmfModel):
    """TMF630 error body."""

    code: str
    reason: str
    message: str | None = None
    status: str | None = None
    referenceError: str | None = None
