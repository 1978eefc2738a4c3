"""Request bodies of provtrack's extension API (/provtrack/v1), for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from provtrack.api.schemas import NonEmpty


class SecretRotation(BaseModel):
    """POST /provtrack/v1/hub/{id}/rotateSecret (optional body)."""

    overlapSeconds: float | None = Field(
        default=None, ge=0, description="how long the old secret keeps signing; default the server's"
    )


class DeadLetterReplay(BaseModel):
    """POST /provtrack/v1/deadLetter/replay: dead letters by id, or every undelivered one of a subscription."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["ids"]}, {"required": ["subscription"]}]}
    )

    ids: list[int] | None = Field(default=None, description="dead letter ids")
    subscription: str | None = Field(default=None, min_length=1, description="a subscription id")


class ActivitySkip(BaseModel):
    """POST /provtrack/v1/activity/{id}/skip."""

    reason: NonEmpty = Field(description="why the activity is skipped; kept in the order's timeline")


class ActivityFailure(BaseModel):
    """POST /provtrack/v1/activity/{id}/fail (optional body)."""

    reason: str | None = Field(default=None, description="why the activity is given up")


class ResourceOrderEvent(BaseModel):
    """A TMF652 notification as a downstream system's hub sends it: the resource order it is about."""

    model_config = ConfigDict(extra="allow")

    eventId: str | None = None
    eventType: str | None = None
    eventTime: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    event: ResourceOrderEventPayload


class ResourceOrderEventPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    resourceOrder: dict[str, Any] = Field(description="the TMF652 ResourceOrder, with `id` and `state`")


ResourceOrderEvent.model_rebuild()


class CancelResourceOrderEvent(BaseModel):
    """A TMF652 cancelResourceOrder notification from a downstream system's hub."""

    model_config = ConfigDict(extra="allow")

    eventId: str | None = None
    eventType: str | None = None
    event: CancelResourceOrderEventPayload


class CancelResourceOrderEventPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    cancelResourceOrder: dict[str, Any] = Field(
        description="the TMF652 CancelResourceOrder, with its `state`"
    )


class ProductOrderEvent(BaseModel):
    """A TMF622 notification (product order or cancel product order) from the product ordering API."""

    model_config = ConfigDict(extra="allow")

    eventId: str | None = None
    eventType: str | None = None
    event: dict[str, Any] = Field(description="`productOrder` or `cancelProductOrder`")


class PartnerOrderEvent(BaseModel):
    """A TMF641 notification from a partner: it only makes provtrack read the partner's order now."""

    model_config = ConfigDict(extra="allow")

    eventId: str | None = None
    eventType: str | None = None
    event: PartnerOrderEventPayload


class PartnerOrderEventPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    serviceOrder: dict[str, Any] = Field(description="the partner's ServiceOrder, with its `id`")


class PartnerCancelEvent(BaseModel):
    """A partner's TMF641 cancelServiceOrder notification: provtrack then reads the task at the partner."""

    model_config = ConfigDict(extra="allow")

    eventId: str | None = None
    eventType: str | None = None
    event: PartnerCancelEventPayload


class PartnerCancelEventPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    cancelServiceOrder: dict[str, Any] = Field(description="the partner's CancelServiceOrder, with its `id`")


class TaskAssignment(BaseModel):
    """POST /provtrack/v1/task/{id}/assign and /reassign."""

    assignee: NonEmpty = Field(description="the member who gets the task")


class TaskNote(BaseModel):
    text: NonEmpty


class TaskCompletion(BaseModel):
    """The task's checklist filled in: field name -> value (docs/coordination.md)."""

    checklist: dict[str, Any] | None = None


class TaskFailure(BaseModel):
    reasonCode: NonEmpty = Field(description="one of the task's `failureCodes`")
    reason: str | None = Field(default=None, min_length=1)


class TaskHandBack(BaseModel):
    reason: str | None = Field(default=None, min_length=1)


class InformationRequest(BaseModel):
    """What the customer must supply: the service characteristics wanted."""

    informationRequired: list[dict[str, Any]] = Field(
        min_length=1, description='e.g. `[{"name": "accessCode", "description": "the door code"}]`'
    )


class WorkGroupDefinition(BaseModel):
    """A work group as the catalog defines one (docs/coordination.md)."""

    model_config = ConfigDict(extra="allow")

    description: str | None = None
    members: list[str] | None = None
    capacity: int | None = Field(default=None, ge=1)
    memberCapacity: int | None = Field(default=None, ge=1)
    timeZone: str | None = Field(default=None, description="an IANA name; default UTC")
    workingHours: dict[str, str] | None = Field(default=None, description='`{"mon-fri": "08:00-18:00"}`')
    holidays: list[str] | None = Field(default=None, description="yearly MM-DD, or one date")


CancelResourceOrderEvent.model_rebuild()
PartnerOrderEvent.model_rebuild()
PartnerCancelEvent.model_rebuild()
