"""The catalog's coordination sections: work groups, partners, and what a manual task asks
(docs/catalog.md, docs/coordination.md). `read_catalog` calls these with its reader, which records
each problem with its line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from provtrack.domain.catalog import Progress
from provtrack.domain.partners import Credentials, Partner, Scheme
from provtrack.domain.work_groups import (
    DEFAULT_FAILURE_CODES,
    ChecklistField,
    FieldType,
    TaskTerms,
    WorkGroup,
    valid_field_name,
)
from provtrack.domain.working_hours import InvalidWorkingHours, WorkingHours, read_holidays, read_week

TASK_KEYS = frozenset({"instructions", "checklist", "failureCodes"})
SECRET_KEY = {Scheme.BEARER: "token", Scheme.BASIC: "password", Scheme.API_KEY: "key"}
DEFAULT_PARTNER_POLL = timedelta(minutes=15)


class Reporter(Protocol):
    def problem(self, node: Any, key: str | int | None, message: str) -> None: ...
    def duration(self, node: dict[str, Any], key: str, where: str) -> timedelta | None: ...


class InvalidWorkGroup(ValueError):
    """A work group defined through the API is refused; `problems` says what is wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _Problems:
    """A reporter without lines, for a definition that comes as a request body."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, node: Any, key: str | int | None, message: str) -> None:
        self.problems.append(message)

    def duration(self, node: dict[str, Any], key: str, where: str) -> timedelta | None:
        return None


def read_work_group(name: str, body: Any) -> WorkGroup:
    """A work group from a catalog-shaped mapping (members, capacity, timeZone, workingHours, ...),
    as the work API takes it; InvalidWorkGroup naming every problem."""
    reporter = _Problems()
    if not isinstance(name, str) or not valid_field_name(name):
        reporter.problems.append(f"{name!r} is not a work group name (letters, digits, _ . -)")
    groups = read_work_groups(reporter, {name: body})
    if reporter.problems:
        raise InvalidWorkGroup(reporter.problems)
    return groups[name]


def read_work_groups(r: Reporter, raw: dict[str, Any]) -> dict[str, WorkGroup]:
    groups: dict[str, WorkGroup] = {}
    for name, body in raw.items():
        body = {} if body is None else body
        where = f"workGroups.{name}"
        if not isinstance(body, dict):
            r.problem(raw, name, f"{where}: must be a mapping (members, capacity, timeZone, workingHours)")
            continue
        known = {
            "description",
            "members",
            "capacity",
            "memberCapacity",
            "timeZone",
            "workingHours",
            "holidays",
        }
        for key in body:
            if key not in known:
                r.problem(body, key, f"{where}: unknown key `{key}` (expected {', '.join(sorted(known))})")
        members = body.get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
            r.problem(body, "members", f"{where}.members: must be a list of names")
            members = []
        capacity = _positive(r, body, "capacity", where)
        member_capacity = _positive(r, body, "memberCapacity", where)
        # A group whose hours are refused is still declared: its activities are not refused again.
        hours = _hours(r, body, where) or WorkingHours()
        groups[str(name)] = WorkGroup(
            str(name), str(body.get("description") or ""), tuple(members), capacity, member_capacity, hours
        )
    return groups


def _positive(r: Reporter, body: dict[str, Any], key: str, where: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        r.problem(body, key, f"{where}.{key}: must be a whole number of tasks, at least 1")
        return None
    return value


def _hours(r: Reporter, body: dict[str, Any], where: str) -> WorkingHours | None:
    try:
        week = read_week(body.get("workingHours"))
    except InvalidWorkingHours as exc:
        r.problem(body, "workingHours", f"{where}.workingHours: {exc}")
        return None
    try:
        fixed, yearly = read_holidays(body.get("holidays") or [])
    except InvalidWorkingHours as exc:
        r.problem(body, "holidays", f"{where}.holidays: {exc}")
        return None
    try:
        return WorkingHours(str(body.get("timeZone") or "UTC"), week, fixed, yearly)
    except InvalidWorkingHours as exc:
        r.problem(body, "timeZone" if "timeZone" in body else None, f"{where}: {exc}")
        return None


def read_partners(r: Reporter, raw: dict[str, Any]) -> dict[str, Partner]:
    partners: dict[str, Partner] = {}
    for name, body in raw.items():
        where = f"partners.{name}"
        if not isinstance(body, dict):
            r.problem(raw, name, f"{where}: must be a mapping with `url`")
            continue
        known = {"description", "url", "progress", "pollInterval", "credentials"}
        for key in body:
            if key not in known:
                r.problem(body, key, f"{where}: unknown key `{key}` (expected {', '.join(sorted(known))})")
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            r.problem(
                body, "url" if "url" in body else None, f"{where}.url: an http(s) TMF641 base URL is required"
            )
            continue
        try:
            progress = Progress(body.get("progress", "hub"))
        except ValueError:
            r.problem(body, "progress", f"{where}.progress: must be `hub` or `poll`")
            continue
        interval = r.duration(body, "pollInterval", where) or DEFAULT_PARTNER_POLL
        if interval <= timedelta(0):
            r.problem(body, "pollInterval", f"{where}.pollInterval: must be positive")
            continue
        partners[str(name)] = Partner(
            str(name),
            url.rstrip("/"),
            progress,
            interval,
            _credentials(r, body, where),
            str(body.get("description") or ""),
        )
    return partners


def _credentials(r: Reporter, body: dict[str, Any], where: str) -> Credentials | None:
    """The partner's credentials by reference; None without any (or after a problem, reported)."""
    raw = body.get("credentials")
    if raw is None:
        return None
    where = f"{where}.credentials"
    if not isinstance(raw, dict):
        r.problem(body, "credentials", f"{where}: must be a mapping with `type`")
        return None
    try:
        scheme = Scheme(str(raw.get("type")))
    except ValueError:
        r.problem(raw, "type", f"{where}.type: must be one of {', '.join(s.value for s in Scheme)}")
        return None
    key = SECRET_KEY[scheme]
    reference = raw.get(key)
    variable = reference.get("env") if isinstance(reference, dict) else None
    if not isinstance(variable, str) or not variable:
        r.problem(
            raw,
            key if key in raw else None,
            f"{where}.{key}: give it by reference, {{env: VARIABLE}}; a secret is never written in the catalog",
        )
        return None
    username = raw.get("username")
    if scheme is Scheme.BASIC and not isinstance(username, str):
        r.problem(raw, None, f"{where}: basic credentials need `username`")
        return None
    return Credentials(scheme, variable, username, str(raw.get("header") or "X-API-Key"))


def read_task_terms(r: Reporter, raw: dict[str, Any], where: str, *, manual: bool) -> TaskTerms | None:
    """A manual task's instructions, checklist and failure codes; a problem if given elsewhere."""
    given = [k for k in TASK_KEYS if k in raw]
    if not manual:
        for key in given:
            r.problem(raw, key, f"{where}.{key}: only a manualTask activity has `{key}`")
        return None
    fields = _checklist(r, raw, where)
    codes = raw.get("failureCodes") or list(DEFAULT_FAILURE_CODES)
    if not isinstance(codes, list) or not all(valid_field_name(c) for c in codes):
        r.problem(raw, "failureCodes", f"{where}.failureCodes: must be a list of codes such as noAccess")
        codes = list(DEFAULT_FAILURE_CODES)
    return TaskTerms(str(raw.get("instructions") or ""), fields, tuple(codes))


def _checklist(r: Reporter, raw: dict[str, Any], where: str) -> tuple[ChecklistField, ...]:
    entries = raw.get("checklist") or []
    if not isinstance(entries, list):
        r.problem(raw, "checklist", f"{where}.checklist: must be a list of fields")
        return ()
    fields: list[ChecklistField] = []
    for index, entry in enumerate(entries):
        at = f"{where}.checklist[{index}]"
        if not isinstance(entry, dict) or not valid_field_name(entry.get("name")):
            r.problem(entries, index, f"{at}: a field needs a `name` (letters, digits, _ . -)")
            continue
        try:
            kind = FieldType(entry.get("type", "text"))
        except ValueError:
            r.problem(entry, "type", f"{at}.type: must be one of {', '.join(t.value for t in FieldType)}")
            continue
        values = entry.get("values") or []
        if kind is FieldType.CHOICE and (not isinstance(values, list) or not values):
            r.problem(entry, None, f"{at}: a choice needs `values`")
            continue
        if entry["name"] in {f.name for f in fields}:
            r.problem(entry, "name", f"{at}: field {entry['name']!r} is listed twice")
            continue
        fields.append(
            ChecklistField(
                entry["name"],
                kind,
                bool(entry.get("required", True)),
                str(entry.get("description") or ""),
                tuple(str(v) for v in values),
            )
        )
    return tuple(fields)
