"""Who does manual work, and what a manual task asks of them (docs/coordination.md).

A work group has members, a capacity (tasks in progress at once), working hours in its time zone and
holidays. A manual-task activity of the catalog adds its terms: instructions, the checklist the
person fills in to close the task (validated, then kept as service characteristics), and the reason
codes a failure may give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from provtrack.domain.working_hours import WorkingHours

DEFAULT_FAILURE_CODES = ("customerAbsent", "noAccess", "equipmentFaulty", "wrongAddress", "other")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class WorkGroup:
    name: str
    description: str = ""
    members: tuple[str, ...] = ()  # empty: anyone may claim its tasks
    capacity: int | None = None  # tasks in progress at once; None: no limit
    member_capacity: int | None = None  # tasks one member has in progress at once; None: no limit
    hours: WorkingHours = field(default_factory=WorkingHours)

    def admits(self, person: str) -> bool:
        return not self.members or person in self.members

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "members": list(self.members),
            "workingHours": self.hours.to_document(),
        }
        optional = {
            "description": self.description or None,
            "capacity": self.capacity,
            "memberCapacity": self.member_capacity,
        }
        document.update({k: v for k, v in optional.items() if v is not None})
        return document


class FieldType(StrEnum):
    """The type of a checklist field: what the person may write in it."""

    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    CHOICE = "choice"  # one of `values`


@dataclass(frozen=True, slots=True)
class ChecklistField:
    name: str
    type: FieldType = FieldType.TEXT
    required: bool = True
    description: str = ""
    values: tuple[str, ...] = ()  # for a choice

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "type": self.type.value, "required": self.required}
        if self.description:
            document["description"] = self.description
        if self.values:
            document["values"] = list(self.values)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ChecklistField:
        return cls(
            name=str(document["name"]),
            type=FieldType(document.get("type", "text")),
            required=bool(document.get("required", True)),
            description=str(document.get("description") or ""),
            values=tuple(str(v) for v in document.get("values") or ()),
        )


@dataclass(frozen=True, slots=True)
class TaskTerms:
    """What a manual-task activity asks of the person who does it."""

    instructions: str = ""
    checklist: tuple[ChecklistField, ...] = ()
    failure_codes: tuple[str, ...] = DEFAULT_FAILURE_CODES

    def to_document(self) -> dict[str, Any]:
        return {
            "instructions": self.instructions,
            "checklist": [f.to_document() for f in self.checklist],
            "failureCodes": list(self.failure_codes),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> TaskTerms:
        return cls(
            instructions=str(document.get("instructions") or ""),
            checklist=tuple(ChecklistField.from_document(f) for f in document.get("checklist") or ()),
            failure_codes=tuple(document.get("failureCodes") or DEFAULT_FAILURE_CODES),
        )


class InvalidChecklist(ValueError):
    """The values given to complete a task do not fill its checklist; `problems` names each field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("checklist: " + "; ".join(problems))


def validate_checklist(fields: tuple[ChecklistField, ...], values: Any) -> dict[str, Any]:
    """The checklist's values, typed, in the checklist's order; InvalidChecklist naming every field
    that is missing, of the wrong type, or not in the checklist."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise InvalidChecklist(["an object of field names and values is expected"])
    known = {f.name for f in fields}
    problems = [f"{name}: not a field of this checklist" for name in values if name not in known]
    checked: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name)
        if value is None or value == "":
            if f.required:
                problems.append(f"{f.name}: required" + (f" ({f.description})" if f.description else ""))
            continue
        problem = _type_problem(f, value)
        if problem:
            problems.append(f"{f.name}: {problem}")
        else:
            checked[f.name] = value
    if problems:
        raise InvalidChecklist(problems)
    return checked


def _type_problem(f: ChecklistField, value: Any) -> str | None:
    if f.type is FieldType.TEXT:
        return None if isinstance(value, str) else "must be a text"
    if f.type is FieldType.BOOLEAN:
        return None if isinstance(value, bool) else "must be true or false"
    if f.type is FieldType.INTEGER:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if f.type is FieldType.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if f.type is FieldType.DATE:
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return "must be a date such as 2026-11-27"
        return None
    return None if value in f.values else f"must be one of {', '.join(f.values)}"


def valid_field_name(name: Any) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name))
