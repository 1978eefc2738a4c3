"""TMF641 v4.1 resource model as Pydantic models: the OpenAPI document and the type checks of bodies.

Every model allows extra attributes (TMF630's extension pattern: `@type` subclasses add fields). The
models check types; the TMF641 rules between fields live in `provtrack.domain.validation`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TmfModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type_: str | None = Field(default=None, alias="@type")
    base_type: str | None = Field(default=None, alias="@baseType")
    schema_location: str | None = Field(default=None, alias="@schemaLocation")


class Ref(TmfModel):
    id: str | None = None
    href: str | None = None
    name: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class RelatedParty(Ref):
    role: str | None = None


class Note(TmfModel):
    id: str | None = None
    author: str | None = None
    date: str | None = None
    text: str | None = None


class ExternalReference(TmfModel):
    externalReferenceType: str | None = None
    name: str | None = None


class Characteristic(TmfModel):
    id: str | None = None
    name: str
    valueType: str | None = None
    value: Any = None


class ServiceSpecificationRef(Ref):
    version: str | None = None


class ServiceRefOrValue(TmfModel):
    id: str | None = None
    href: str | None = None
    name: str | None = None
    description: str | None = None
    category: str | None = None
    serviceType: str | None = None
    serviceDate: str | None = None
    state: (
        Literal["feasibilityChecked", "designed", "reserved", "inactive", "active", "terminated"] | None
    ) = None
    serviceCharacteristic: list[Characteristic] | None = None
    serviceSpecification: ServiceSpecificationRef | None = None
    supportingService: list[Ref] | None = None
    supportingResource: list[Ref] | None = None
    serviceRelationship: list[dict[str, Any]] | None = None
    relatedParty: list[RelatedParty] | None = None
    place: list[dict[str, Any]] | None = None
    feature: list[dict[str, Any]] | None = None
    note: list[Note] | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class ServiceOrderItemRef(TmfModel):
    itemId: str | None = None
    serviceOrderId: str | None = None
    serviceOrderHref: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class ServiceOrderItemRelationship(TmfModel):
    relationshipType: str | None = None
    orderItem: ServiceOrderItemRef | None = None


class AppointmentRef(Ref):
    description: str | None = None


class ErrorMessage(TmfModel):
    code: str | None = None
    reason: str | None = None
    message: str | None = None
    status: str | None = None
    referenceError: str | None = None
    timestamp: str | None = None


class ServiceOrderItemCreate(TmfModel):
    id: str = Field(description="unique within the order")
    action: Literal["add", "modify", "delete", "noChange"]
    quantity: int | None = None
    service: ServiceRefOrValue
    appointment: AppointmentRef | None = None
    serviceOrderItem: list[ServiceOrderItemCreate] | None = None
    serviceOrderItemRelationship: list[ServiceOrderItemRelationship] | None = None


class ServiceOrderItem(ServiceOrderItemCreate):
    state: str | None = None
    errorMessage: list[ErrorMessage] | None = None
    serviceOrderItem: list[ServiceOrderItem] | None = None  # type: ignore[assignment]


class ServiceOrderRelationship(Ref):
    relationshipType: str | None = None


class ServiceOrderCreate(TmfModel):
    """ServiceOrder_Create: what a client sends to POST /serviceOrder."""

    externalId: str | None = None
    priority: str | None = None
    description: str | None = None
    category: str | None = None
    notificationContact: str | None = None
    requestedStartDate: str | None = None
    requestedCompletionDate: str | None = None
    cancellationDate: str | None = None
    cancellationReason: str | None = None
    externalReference: list[ExternalReference] | None = None
    note: list[Note] | None = None
    orderRelationship: list[ServiceOrderRelationship] | None = None
    relatedParty: list[RelatedParty] | None = None
    serviceOrderItem: list[ServiceOrderItemCreate] = Field(min_length=1)


class JeopardyAlert(TmfModel):
    id: str | None = None
    alertDate: str | None = None
    exception: str | None = None
    jeopardyType: str | None = None
    message: str | None = None
    name: str | None = None
    serviceOrderItem: list[ServiceOrderItemRef] | None = None


class Milestone(TmfModel):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    message: str | None = None
    milestoneDate: str | None = None
    status: str | None = None
    serviceOrderItem: list[ServiceOrderItemRef] | None = None


class ServiceOrder(ServiceOrderCreate):
    """ServiceOrder as the server returns it."""

    id: str
    href: str
    state: str
    orderDate: str
    startDate: str | None = None
    completionDate: str | None = None
    expectedCompletionDate: str | None = None
    jeopardyAlert: list[JeopardyAlert] | None = None
    milestone: list[Milestone] | None = None
    errorMessage: list[ErrorMessage] | None = None
    serviceOrderItem: list[ServiceOrderItem]  # type: ignore[assignment]


class ServiceOrderUpdate(TmfModel):
    """ServiceOrder_Update: the attributes a PATCH may change (merge patch shape)."""

    description: str | None = None
    externalId: str | None = None
    notificationContact: str | None = None
    priority: str | None = None
    requestedCompletionDate: str | None = None
    requestedStartDate: str | None = None
    externalReference: list[ExternalReference] | None = None
    note: list[Note] | None = None
    orderRelationship: list[ServiceOrderRelationship] | None = None
    relatedParty: list[RelatedParty] | None = None
    serviceOrderItem: list[ServiceOrderItem] | None = None
    state: str | None = None


class ServiceOrderRef(Ref):
    pass


class CancelServiceOrderCreate(TmfModel):
    cancellationReason: str | None = None
    requestedCancellationDate: str | None = None
    serviceOrder: ServiceOrderRef


class CancelServiceOrder(CancelServiceOrderCreate):
    id: str
    href: str
    state: Literal["acknowledged", "inProgress", "done", "terminatedWithError"]
    effectiveCancellationDate: str | None = None
    completionMessage: str | None = None
    errorMessage: ErrorMessage | None = None


class Error(BaseModel):
    """TMF630 error body."""

    code: str
    reason: str
    message: str | None = None
    status: str | None = None
    referenceError: str | None = None
