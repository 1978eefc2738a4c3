"""The provisioning catalog: downstream systems, work groups, partners, and per service specification
and item action the activities that deliver it (docs/catalog.md).

`read_catalog` validates a parsed document and names the line of every problem. It reads line numbers
duck-typed from the parsed nodes (`line`, `key_lines`, `item_lines` attributes, set by the YAML loader
in the adapters), so the domain stays free of any parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from provtrack.domain.durations import InvalidDuration, parse_duration

if TYPE_CHECKING:
    from provtrack.domain.partners import Partner
    from provtrack.domain.work_groups import TaskTerms, WorkGroup

ACTIONS = ("add", "modify", "delete")
DEFAULT_HUB_SAFETY_POLL = timedelta(minutes=5)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TEMPLATE = re.compile(r"\{([^{}:]+)(?::([^{}]*))?\}")


class ActivityKind(StrEnum):
    """What an activity is and who carries it out."""

    RESOURCE_ORDER = "resourceOrder"  # a TMF652 resource order to a downstream system
    MANUAL_TASK = "manualTask"  # a task in a work group's queue (docs/coordination.md)
    PARTNER_ORDER = "partnerOrder"  # a TMF641 service order to a partner (docs/coordination.md)


class Progress(StrEnum):
    """How provtrack learns how a system's resource orders progress."""

    HUB = "hub"  # subscribe to its TMF652 hub; notifications arrive at our listener
    POLL = "poll"  # GET each open resource order every poll interval


@dataclass(frozen=True, slots=True)
class System:
    name: str
    url: str  # TMF652 base URL, e.g. http://host/tmf-api/resourceOrderingManagement/v4
    progress: Progress
    poll_interval: timedelta  # polling period; with a hub, the period of the safety poll
    # Answers `GET resourceOrder?externalId=`: a POST whose outcome is unknown is looked up there
    # before it is sent again. A system that cannot be searched must itself drop a repeated externalId.
    searchable: bool = True
    cancellable: bool = True  # takes TMF652 cancelResourceOrder for an order under way
    # A notification that finishes a resource order is believed only once `GET resourceOrder/{id}`
    # at the system says the same (docs/security.md); off for a system that cannot be read.
    confirm: bool = True


@dataclass(frozen=True, slots=True)
class ActivitySpec:
    id: str
    kind: ActivityKind
    expected_duration: timedelta
    system: str | None = None
    work_group: str | None = None
    partner: str | None = None
    resource_specification: str | None = None
    resource_action: str = "add"
    characteristics: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    point_of_no_return: bool = False
    undo: str | None = None
    description: str = ""
    task: TaskTerms | None = None  # a manual task's instructions, checklist, failure codes
    service_specification: str | None = None  # a partner order's specification at the partner

    @property
    def owner(self) -> str:
        return self.system or self.work_group or self.partner or ""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    id: str
    name: str
    activities: Mapping[str, tuple[ActivitySpec, ...]]  # by item action
    undo: Mapping[str, ActivitySpec]  # undo activities by id


@dataclass(frozen=True, slots=True)
class Catalog:
    systems: Mapping[str, System]
    work_groups: Mapping[str, WorkGroup]
    partners: Mapping[str, Partner]
    services: Mapping[str, ServiceSpec]
    inventory_url: str | None = None
    source: str = "<catalog>"


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None
    message: str


class InvalidCatalog(ValueError):
    """The catalog file is refused; every problem names the file and line."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        text = "\n".join(f"{source}:{p.line or '?'}: {p.message}" for p in problems)
        super().__init__(text)


def template_names(value: Any) -> list[tuple[str, str | None]]:
    """The `{name}` / `{name:default}` placeholders of a characteristic value."""
    if not isinstance(value, str):
        return []
    return [(m.group(1).strip(), m.group(2)) for m in _TEMPLATE.finditer(value)]


def fill_template(value: Any, values: Mapping[str, Any]) -> Any:
    """Substitute placeholders; a value that is a single placeholder keeps the source's type."""
    if not isinstance(value, str):
        return value
    whole = _TEMPLATE.fullmatch(value)
    if whole:
        name, default = whole.group(1).strip(), whole.group(2)
        return values.get(name, default)

    def one(match: re.Match[str]) -> str:
        found = values.get(match.group(1).strip(), match.group(2))
        return "" if found is None else str(found)

    return _TEMPLATE.sub(one, value)


# --- reading and validating --------------------------------------------------------------------


def _line(node: Any, key: str | int | None = None) -> int | None:
    if key is None:
        return getattr(node, "line", None)
    if isinstance(key, int):
        lines = getattr(node, "item_lines", None)
        return lines[key] if lines and key < len(lines) else _line(node)
    return getattr(node, "key_lines", {}).get(key, _line(node))


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, node: Any, key: str | int | None, message: str) -> None:
        self.problems.append(Problem(_line(node, key), message))

    def mapping(self, node: Any, key: str, where: str, *, required: bool = False) -> dict[str, Any]:
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            if required:
                self.problem(node, None, f"{where}: `{key}` is required")
            return {}
        if not isinstance(value, dict):
            self.problem(node, key, f"{where}.{key}: must be a mapping")
            return {}
        return value

    def duration(self, node: dict[str, Any], key: str, where: str) -> timedelta | None:
        if key not in node:
            return None
        try:
            return parse_duration(node[key])
        except InvalidDuration as exc:
            self.problem(node, key, f"{where}.{key}: {exc}")
            return None


def read_catalog(document: Any, *, source: str = "<catalog>") -> Catalog:
    """Validate a parsed catalog; raise InvalidCatalog listing every problem with its line."""
    r = _Reader(source)
    if not isinstance(document, dict):
        raise InvalidCatalog(source, [Problem(_line(document) or 1, "the catalog must be a mapping")])
    known = {"systems", "workGroups", "partners", "services", "inventory"}
    for key in document:
        if key not in known:
            r.problem(
                document, key, f"unknown top-level key `{key}` (expected one of {', '.join(sorted(known))})"
            )
    from provtrack.domain.coordination_catalog import read_partners, read_work_groups  # imports this

    systems = _read_systems(r, r.mapping(document, "systems", "catalog"))
    work_groups = read_work_groups(r, r.mapping(document, "workGroups", "catalog"))
    partners = read_partners(r, r.mapping(document, "partners", "catalog"))
    inventory = r.mapping(document, "inventory", "catalog")
    inventory_url = inventory.get("url") if inventory else None
    if inventory and not isinstance(inventory_url, str):
        r.problem(inventory, None, "inventory.url: a TMF638 base URL is required")
    services: dict[str, ServiceSpec] = {}
    raw_services = r.mapping(document, "services", "catalog", required=True)
    for spec_id, body in raw_services.items():
        spec = _read_service(
            r, raw_services, str(spec_id), body, systems=systems, work_groups=work_groups, partners=partners
        )
        if spec is not None:
            services[spec.id] = spec
    if r.problems:
        raise InvalidCatalog(source, r.problems)
    return Catalog(systems, work_groups, partners, services, inventory_url, source)


def _read_systems(r: _Reader, raw: dict[str, Any]) -> dict[str, System]:
    systems: dict[str, System] = {}
    for name, body in raw.items():
        where = f"systems.{name}"
        if not isinstance(body, dict):
            r.problem(raw, name, f"{where}: must be a mapping with `url` and `progress`")
            continue
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            r.problem(
                body, "url" if "url" in body else None, f"{where}.url: an http(s) TMF652 base URL is required"
            )
            continue
        try:
            progress = Progress(body.get("progress", "hub"))
        except ValueError:
            r.problem(
                body, "progress", f"{where}.progress: must be `hub` or `poll`, not {body.get('progress')!r}"
            )
            continue
        interval = r.duration(body, "pollInterval", where)
        if progress is Progress.POLL and "pollInterval" not in body:
            r.problem(body, None, f"{where}: `pollInterval` is required when progress is `poll`")
            continue
        if interval is not None and interval <= timedelta(0):
            r.problem(body, "pollInterval", f"{where}.pollInterval: must be positive")
            continue
        flags = {key: body.get(key, True) for key in ("searchable", "cancellable", "confirm")}
        if wrong := [key for key, value in flags.items() if not isinstance(value, bool)]:
            for key in wrong:
                r.problem(body, key, f"{where}.{key}: must be true or false")
            continue
        systems[str(name)] = System(
            str(name),
            url.rstrip("/"),
            progress,
            interval or DEFAULT_HUB_SAFETY_POLL,
            searchable=flags["searchable"],
            cancellable=flags["cancellable"],
            confirm=flags["confirm"],
        )
    return systems


def _read_service(
    r: _Reader,
    parent: dict[str, Any],
    spec_id: str,
    body: Any,
    *,
    systems: Mapping[str, System],
    work_groups: Mapping[str, Any],
    partners: Mapping[str, Any],
) -> ServiceSpec | None:
    where = f"services.{spec_id}"
    if not isinstance(body, dict):
        r.problem(parent, spec_id, f"{where}: must be a mapping")
        return None
    for key in body:
        if key not in (*ACTIONS, "name", "undo"):
            r.problem(body, key, f"{where}: unknown key `{key}` (expected name, add, modify, delete, undo)")
    undo: dict[str, ActivitySpec] = {}
    raw_undo = body.get("undo") or []
    for index, raw in enumerate(raw_undo if isinstance(raw_undo, list) else []):
        activity = _read_activity(
            r,
            raw_undo,
            index,
            raw,
            f"{where}.undo",
            systems=systems,
            work_groups=work_groups,
            partners=partners,
        )
        if activity is not None:
            undo[activity.id] = activity
    activities: dict[str, tuple[ActivitySpec, ...]] = {}
    for action in ACTIONS:
        raw_list = body.get(action)
        if raw_list is None:
            continue
        if not isinstance(raw_list, list):
            r.problem(body, action, f"{where}.{action}: must be a list of activities")
            continue
        read = [
            _read_activity(
                r,
                raw_list,
                i,
                raw,
                f"{where}.{action}",
                systems=systems,
                work_groups=work_groups,
                partners=partners,
            )
            for i, raw in enumerate(raw_list)
        ]
        found = [a for a in read if a is not None]
        _check_graph(r, raw_list, found, f"{where}.{action}", undo)
        activities[action] = tuple(found)
    if not activities:
        r.problem(parent, spec_id, f"{where}: declares no action (add, modify or delete)")
    return ServiceSpec(spec_id, str(body.get("name") or spec_id), activities, undo)


def _read_activity(
    r: _Reader,
    parent: list[Any],
    index: int,
    raw: Any,
    where: str,
    *,
    systems: Mapping[str, System],
    work_groups: Mapping[str, Any],
    partners: Mapping[str, Any],
) -> ActivitySpec | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not _NAME.match(raw["id"]):
        r.problem(parent, index, f"{where}[{index}]: an activity needs an `id` (letters, digits, - _ .)")
        return None
    where = f"{where}.{raw['id']}"
    allowed = {
        "id", "kind", "system", "workGroup", "partner", "resourceSpecification", "resourceAction",
        "characteristics", "after", "expectedDuration", "pointOfNoReturn", "undo", "description",
        "instructions", "checklist", "failureCodes", "serviceSpecification",
    }  # fmt: skip
    for key in raw:
        if key not in allowed:
            r.problem(raw, key, f"{where}: unknown key `{key}`")
    try:
        kind = ActivityKind(raw.get("kind", ActivityKind.RESOURCE_ORDER))
    except ValueError:
        r.problem(raw, "kind", f"{where}.kind: must be one of {', '.join(k.value for k in ActivityKind)}")
        return None
    owner = _activity_owner(r, raw, where, kind, systems=systems, work_groups=work_groups, partners=partners)
    if owner is None:
        return None
    if "expectedDuration" not in raw:
        r.problem(raw, None, f"{where}: `expectedDuration` is required (ISO 8601, e.g. PT5M)")
        return None
    duration = r.duration(raw, "expectedDuration", where)
    shape = _activity_links(r, raw, where)
    if duration is None or shape is None:
        return None
    after, characteristics, resource_action = shape
    from provtrack.domain.coordination_catalog import read_task_terms  # imports this module

    task = read_task_terms(r, raw, where, manual=kind is ActivityKind.MANUAL_TASK)
    return ActivitySpec(
        id=raw["id"],
        kind=kind,
        expected_duration=duration,
        system=owner if kind is ActivityKind.RESOURCE_ORDER else None,
        work_group=owner if kind is ActivityKind.MANUAL_TASK else None,
        partner=owner if kind is ActivityKind.PARTNER_ORDER else None,
        resource_specification=raw.get("resourceSpecification"),
        resource_action=resource_action,
        characteristics=dict(characteristics),
        after=tuple(after),
        point_of_no_return=bool(raw.get("pointOfNoReturn", False)),
        undo=raw.get("undo"),
        description=str(raw.get("description") or ""),
        task=task,
        service_specification=raw.get("serviceSpecification"),
    )


def _activity_owner(
    r: _Reader,
    raw: dict[str, Any],
    where: str,
    kind: ActivityKind,
    *,
    systems: Mapping[str, System],
    work_groups: Mapping[str, Any],
    partners: Mapping[str, Any],
) -> str | None:
    """The system, work group or partner the activity goes to, declared in its section."""
    key, declared, section = {
        ActivityKind.RESOURCE_ORDER: ("system", systems, "systems"),
        ActivityKind.MANUAL_TASK: ("workGroup", work_groups, "workGroups"),
        ActivityKind.PARTNER_ORDER: ("partner", partners, "partners"),
    }[kind]
    owner = raw.get(key)
    if owner is None:
        r.problem(raw, None, f"{where}: a {kind.value} activity needs `{key}`")
        return None
    if owner not in declared:
        r.problem(raw, key, f"{where}.{key}: unknown {key} {owner!r} (not declared under `{section}`)")
        return None
    if kind is ActivityKind.RESOURCE_ORDER and not isinstance(raw.get("resourceSpecification"), str):
        r.problem(raw, None, f"{where}: a resourceOrder activity needs `resourceSpecification`")
        return None
    if kind is ActivityKind.PARTNER_ORDER and not isinstance(raw.get("serviceSpecification"), str):
        r.problem(
            raw, None, f"{where}: a partnerOrder activity needs `serviceSpecification` (at the partner)"
        )
        return None
    return str(owner)


def _activity_links(
    r: _Reader, raw: dict[str, Any], where: str
) -> tuple[list[str], dict[str, Any], str] | None:
    """What the activity waits for, the characteristics it sends, and the resource action."""
    after = raw.get("after") or []
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        r.problem(raw, "after", f"{where}.after: must be a list of activity ids")
        return None
    characteristics = raw.get("characteristics") or {}
    if not isinstance(characteristics, dict):
        r.problem(raw, "characteristics", f"{where}.characteristics: must be a mapping")
        return None
    resource_action = raw.get("resourceAction", "add")
    if resource_action not in ("add", "modify", "delete", "noChange"):
        r.problem(raw, "resourceAction", f"{where}.resourceAction: must be add, modify, delete or noChange")
        return None
    return after, characteristics, str(resource_action)


def _check_graph(
    r: _Reader,
    raw_list: list[Any],
    activities: list[ActivitySpec],
    where: str,
    undo: Mapping[str, ActivitySpec],
) -> None:
    raw_by_id = {raw.get("id"): raw for raw in raw_list if isinstance(raw, dict)}
    ids = set(raw_by_id)  # refused activities count too: their problem is already reported
    seen: set[str] = set()
    for activity in activities:
        raw = raw_by_id[activity.id]
        if activity.id in seen:
            r.problem(raw, "id", f"{where}: activity id {activity.id!r} is used twice")
        seen.add(activity.id)
        if activity.undo is not None and activity.undo not in undo:
            r.problem(
                raw, "undo", f"{where}.{activity.id}.undo: no undo activity {activity.undo!r} in this service"
            )
    for activity in activities:
        for before in activity.after:
            if before not in ids:
                r.problem(
                    raw_by_id[activity.id], "after", f"{where}.{activity.id}.after: no activity {before!r}"
                )
    cycle = find_cycle({a.id: [b for b in a.after if b in ids] for a in activities})
    if cycle:
        first = raw_by_id[cycle[0]]
        r.problem(first, "after", f"{where}: dependency cycle {' -> '.join([*cycle, cycle[0]])}")


def find_cycle(edges: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle in `node -> predecessors` edges, as a list of nodes, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
