"""Surface checks of a TMF641 service order body, each failure naming the offending path.

The API's schema checks types; these checks are the TMF641 rules a schema cannot say: which fields the
server owns, what each item action needs, unique item ids, and relationships that point at items that
exist without forming a cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from provtrack.domain.clock import InvalidDateTime, normalise_client_datetime

# TMF641 v4.1 ServiceOrder_Create "Skipped properties".
SERVER_OWNED_ORDER_FIELDS = frozenset(
    {
        "id",
        "href",
        "orderDate",
        "state",
        "startDate",
        "completionDate",
        "expectedCompletionDate",
        "jeopardyAlert",
        "milestone",
        "errorMessage",
    }
)
SERVER_OWNED_ITEM_FIELDS = frozenset({"state", "errorMessage"})
ITEM_ACTIONS = ("add", "modify", "delete", "noChange")
CLIENT_DATE_FIELDS = ("requestedStartDate", "requestedCompletionDate", "cancellationDate")
# TMF641 (as TMF622 spells out): 0 is the highest priority, 4 the lowest.
PRIORITIES = ("0", "1", "2", "3", "4")


class InvalidOrder(ValueError):
    """A body that breaks a TMF641 rule; `path` names the offending attribute."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class ServerOwnedField(InvalidOrder):
    """The body sets a field only the server may set."""


def validate_new_order(body: Any) -> dict[str, Any]:
    """Check a create body; return it with its date-times normalised. Raises InvalidOrder."""
    if not isinstance(body, dict):
        raise InvalidOrder("serviceOrder", "the body must be a JSON object")
    for name in body:
        if name in SERVER_OWNED_ORDER_FIELDS:
            raise ServerOwnedField(name, "is set by the server and must not be sent")
    checked: dict[str, Any] = dict(body)
    normalise_dates(checked, CLIENT_DATE_FIELDS, prefix="")
    check_priority(checked)
    _check_window(checked)
    checked["serviceOrderItem"] = validate_items(checked.get("serviceOrderItem"), refuse_server_owned=True)
    return checked


def validate_items(items: Any, *, refuse_server_owned: bool) -> list[dict[str, Any]]:
    """Check an item list (create, or a PATCH that replaces it)."""
    if items is None:
        raise InvalidOrder("serviceOrderItem", "is required")
    if not isinstance(items, list) or not items:
        raise InvalidOrder("serviceOrderItem", "must be a non-empty list of items")
    seen: dict[str, str] = {}
    for path, item in _walk(items, "serviceOrderItem"):
        _check_item(path, item, seen, refuse_server_owned=refuse_server_owned)
    _check_relationships(items, set(seen))
    return items


def normalise_dates(doc: dict[str, Any], names: tuple[str, ...], *, prefix: str) -> None:
    for name in names:
        if name in doc and doc[name] is not None:
            try:
                doc[name] = normalise_client_datetime(doc[name])
            except InvalidDateTime as exc:
                raise InvalidOrder(prefix + name, str(exc)) from None


def check_priority(doc: dict[str, Any]) -> None:
    priority = doc.get("priority")
    if priority is not None and priority not in PRIORITIES:
        shown = repr(priority) if not isinstance(priority, str) or len(priority) <= 16 else "that value"
        raise InvalidOrder("priority", f"must be one of {', '.join(PRIORITIES)} (a string), not {shown}")


def _check_window(body: dict[str, Any]) -> None:
    start, end = body.get("requestedStartDate"), body.get("requestedCompletionDate")
    if start and end and end < start:
        raise InvalidOrder("requestedCompletionDate", "is before requestedStartDate")


def _walk(items: list[Any], path: str) -> Iterator[tuple[str, Any]]:
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        yield item_path, item
        children = item.get("serviceOrderItem") if isinstance(item, dict) else None
        if children is not None:
            if not isinstance(children, list):
                raise InvalidOrder(f"{item_path}.serviceOrderItem", "must be a list of items")
            yield from _walk(children, f"{item_path}.serviceOrderItem")


def _check_item(path: str, item: Any, seen: dict[str, str], *, refuse_server_owned: bool) -> None:
    if not isinstance(item, dict):
        raise InvalidOrder(path, "must be an object")
    if refuse_server_owned:
        for name in SERVER_OWNED_ITEM_FIELDS:
            if name in item:
                raise ServerOwnedField(f"{path}.{name}", "is set by the server and must not be sent")
    item_id = item.get("id")
    if item_id is None or item_id == "":
        raise InvalidOrder(f"{path}.id", "is required")
    if not isinstance(item_id, str):
        raise InvalidOrder(f"{path}.id", "must be a string")
    if item_id in seen:
        raise InvalidOrder(f"{path}.id", f"{item_id!r} is already the id of {seen[item_id]}")
    seen[item_id] = path
    action = item.get("action")
    if action is None:
        raise InvalidOrder(f"{path}.action", "is required")
    if action not in ITEM_ACTIONS:
        raise InvalidOrder(f"{path}.action", f"must be one of {', '.join(ITEM_ACTIONS)}, not {action!r}")
    service = item.get("service")
    if service is None:
        raise InvalidOrder(f"{path}.service", "is required")
    if not isinstance(service, dict):
        raise InvalidOrder(f"{path}.service", "must be an object")
    if action == "add":
        spec = service.get("serviceSpecification")
        if not isinstance(spec, dict) or not spec.get("id"):
            raise InvalidOrder(
                f"{path}.service.serviceSpecification.id",
                "is required for action add: it names what to provision",
            )
    if action in ("modify", "delete") and not service.get("id"):
        raise InvalidOrder(
            f"{path}.service.id", f"is required for action {action}: it names the service to change"
        )
    quantity = item.get("quantity")
    # JSON Schema counts 3.0 as an integer, and so do the clients generated from the API's schema.
    whole = isinstance(quantity, int) or (isinstance(quantity, float) and quantity.is_integer())
    if quantity is not None and (not whole or isinstance(quantity, bool) or quantity < 1):
        raise InvalidOrder(f"{path}.quantity", "must be a positive integer")


def _check_relationships(items: list[dict[str, Any]], item_ids: set[str]) -> None:
    edges: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for path, item in _walk(items, "serviceOrderItem"):
        paths[item["id"]] = path
        relationships = item.get("serviceOrderItemRelationship")
        if relationships is None:
            continue
        if not isinstance(relationships, list):
            raise InvalidOrder(f"{path}.serviceOrderItemRelationship", "must be a list")
        for index, rel in enumerate(relationships):
            rel_path = f"{path}.serviceOrderItemRelationship[{index}]"
            if not isinstance(rel, dict):
                raise InvalidOrder(rel_path, "must be an object")
            if not rel.get("relationshipType"):
                raise InvalidOrder(f"{rel_path}.relationshipType", "is required")
            ref = rel.get("orderItem")
            if not isinstance(ref, dict) or not ref.get("itemId"):
                raise InvalidOrder(f"{rel_path}.orderItem.itemId", "is required")
            if ref.get("serviceOrderId") or ref.get("serviceOrderHref"):
                continue  # an item of another order: not ours to resolve here
            target = str(ref["itemId"])
            if target not in item_ids:
                raise InvalidOrder(f"{rel_path}.orderItem.itemId", f"{target!r} is not an item of this order")
            if target == item["id"]:
                raise InvalidOrder(f"{rel_path}.orderItem.itemId", "an item cannot relate to itself")
            edges.setdefault(item["id"], []).append(target)
    cycle = _find_cycle(edges)
    if cycle:
        first = cycle[0]
        raise InvalidOrder(
            f"{paths[first]}.serviceOrderItemRelationship",
            "relationships form a cycle: " + " -> ".join([*cycle, first]),
        )


def _find_cycle(edges: dict[str, list[str]]) -> list[str]:
    """A cycle in the relationship graph, as the list of its items, or [] (iterative DFS)."""
    colour: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(edges):
        if colour.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges.get(start, ())))]
        path = [start]
        colour[start] = 1
        while stack:
            node, successors = stack[-1]
            for succ in successors:
                if colour.get(succ) == 1:
                    return path[path.index(succ) :]
                if not colour.get(succ):
                    colour[succ] = 1
                    path.append(succ)
                    stack.append((succ, iter(edges.get(succ, ()))))
                    break
            else:
                colour[node] = 2
                path.pop()
                stack.pop()
    return []
