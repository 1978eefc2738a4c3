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
