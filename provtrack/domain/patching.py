"""PATCH of a service order: RFC 7396 merge patch and RFC 6902 JSON patch, then TMF641's rules.

A patch is applied to the order's document; the difference between before and after is then checked
field by field (what may change, in which state) and applied through the aggregate, so a state change
still goes through the transition table and every change is recorded.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from provtrack.domain.limits import DEFAULT_LIMITS, LimitExceeded, Limits, check_document, check_order_size
from provtrack.domain.model import ServiceOrder
from provtrack.domain.states import OrderState
from provtrack.domain.validation import (
    CLIENT_DATE_FIELDS,
    InvalidOrder,
    check_priority,
    normalise_dates,
    validate_items,
)

# TMF641 v4.1 ServiceOrder_Update "Skipped properties", plus the fields the server computes.
NOT_PATCHABLE = frozenset(
    {
        "id", "href", "orderDate", "jeopardyAlert", "errorMessage", "milestone", "@baseType",
        "@schemaLocation", "@type", "cancellationDate", "cancellationReason", "category",
        "completionDate", "startDate", "expectedCompletionDate",
    }
)  # fmt: skip
# What a finished order still accepts: annotations, not changes to what was ordered.
PATCHABLE_WHEN_TERMINAL = frozenset({"note", "externalReference", "relatedParty", "description"})
# The cancellation flow owns these states: a PATCH into them would leave the order with nobody to
# finish the assessment.
ENTERED_BY_CANCELLATION = frozenset({OrderState.ASSESSING_CANCELLATION, OrderState.PENDING_CANCELLATION})
ITEM_SERVER_FIELDS = ("id", "action", "state", "errorMessage", "serviceOrderItem")
JSON_PATCH_OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


class NotPatchable(InvalidOrder):
    """The patch changes a field that cannot be patched."""


class PatchConflict(Exception):
    """The patch cannot apply in the order's current situation (HTTP 409)."""


class MalformedPatch(ValueError):
    """The patch document itself is invalid."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_json_patch(
    document: dict[str, Any], operations: Any, limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """RFC 6902, one operation at a time, so that an error names the operation (and never shows the
    order), and a `copy` cannot make the order grow without bound."""
    if not isinstance(operations, list):
        raise MalformedPatch("a JSON patch is a list of operations")
    if len(operations) > limits.patch_operations:
        raise MalformedPatch(f"a JSON patch has at most {limits.patch_operations} operations")
    patched: Any = document
    for index, operation in enumerate(operations):
        op, label = _operation(index, operation)
        try:
            patched = jsonpatch.JsonPatch([operation]).apply(patched)
        except jsonpatch.JsonPatchTestFailed:
            raise PatchConflict(f"{label}: test failed, the order does not hold that value") from None
        except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException, IndexError, KeyError):
            raise MalformedPatch(f"{label}: that location does not exist in the order") from None
        except (jsonpatch.JsonPatchException, TypeError, ValueError) as exc:
            raise MalformedPatch(f"{label}: {str(exc)[:200]}") from None
        if op == "copy" and _over(patched, limits.document_nodes):
            raise LimitExceeded(
                "body", f"the patch makes the order larger than {limits.document_nodes} values"
            )
    if not isinstance(patched, dict):
        raise MalformedPatch("a JSON patch must leave the order an object")
    return patched


def _operation(index: int, operation: Any) -> tuple[str, str]:
    """The operation's name and how an error names it: `operation 2 (replace /priority)`."""
    if not isinstance(operation, dict):
        raise MalformedPatch(f"operation {index}: must be an object")
    op, path = operation.get("op"), operation.get("path")
    if op not in JSON_PATCH_OPERATIONS:
        raise MalformedPatch(f"operation {index}: op must be one of {', '.join(JSON_PATCH_OPERATIONS)}")
    if not isinstance(path, str):
        raise MalformedPatch(f"operation {index} ({op}): path must be a JSON pointer (a string)")
    if op in ("move", "copy") and not isinstance(operation.get("from"), str):
        raise MalformedPatch(f"operation {index} ({op} {path[:100]}): from must be a JSON pointer")
    if op in ("add", "replace", "test") and "value" not in operation:
        raise MalformedPatch(f"operation {index} ({op} {path[:100]}): value is required")
    return str(op), f"operation {index} ({op} {path[:100]})"


def _over(document: Any, cap: int) -> bool:
    """Whether the document holds more than `cap` values (counting stops there)."""
    count, stack = 0, [document]
    while stack:
        value = stack.pop()
        count += 1
        if count > cap:
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def apply_update(
    order: ServiceOrder,
    after: dict[str, Any],
    *,
    now: str,
    actor: str,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Apply the difference between the order and its patched document `after`. A merge patch and a
    JSON patch arrive here alike, so the same rules check what either changes."""
    before = order.to_document()
    after = dict(after)
    normalise_dates(after, CLIENT_DATE_FIELDS[:2], prefix="")
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for name in changed:
        if name in NOT_PATCHABLE:
            raise NotPatchable(name, "cannot be patched")
    check_document({name: after[name] for name in changed if name in after}, limits)
    check_order_size(after, limits)
    if "priority" in changed:
        check_priority(after)
    if order.is_terminal:
        # A state change is left to the transition table, whose refusal lists the next states.
        frozen = [n for n in changed if n not in PATCHABLE_WHEN_TERMINAL and n != "state"]
        if frozen:
            raise PatchConflict(
                f"service order {order.id} is {order.state}: only "
                f"{', '.join(sorted(PATCHABLE_WHEN_TERMINAL))} can still change, not {', '.join(frozen)}"
            )
    start, end = after.get("requestedStartDate"), after.get("requestedCompletionDate")
    if start and end and end < start:
        raise InvalidOrder("requestedCompletionDate", "is before requestedStartDate")
    for name in changed:
        if name == "state":
            continue
        if name == "serviceOrderItem":
            _apply_item_changes(order, after.get(name), now=now, actor=actor)
        else:
            order.set_attribute(name, after.get(name), now=now, actor=actor)
    if "state" in changed:
        target = after.get("state")
        try:
            state = OrderState(str(target))
        except ValueError:
            raise InvalidOrder(
                "state", f"{target!r} is not one of {', '.join(s.value for s in OrderState)}"
            ) from None
        if state in ENTERED_BY_CANCELLATION and not order.is_terminal:
            raise PatchConflict(f"state: {state} is entered through POST /cancelServiceOrder, not by PATCH")
        order.move_to(state, now=now, actor=actor)


def _apply_item_changes(order: ServiceOrder, items: Any, *, now: str, actor: str) -> None:
    items = validate_items(items, refuse_server_owned=False)
    current = {i.id: i for i in order.all_items()}
    flat = list(_flatten(items, "serviceOrderItem"))
    new_ids = {doc["id"] for _, doc in flat}
    if new_ids != set(current):
        added, removed = sorted(new_ids - set(current)), sorted(set(current) - new_ids)
        raise InvalidOrder(
            "serviceOrderItem",
            "items cannot be added or removed once the order is accepted"
            + (f"; added: {', '.join(added)}" if added else "")
            + (f"; removed: {', '.join(removed)}" if removed else "")
            + "; cancel the order and submit a new one",
        )
    for path, doc in flat:
        item = current[doc["id"]]
        if doc.get("action") != item.action:
            raise NotPatchable(f"{path}.action", "cannot be patched")
        if doc.get("state", item.state.value) != item.state.value:
            raise NotPatchable(f"{path}.state", "is set by the server")
        if doc.get("errorMessage", item.error_messages or None) != (item.error_messages or None):
            raise NotPatchable(f"{path}.errorMessage", "is set by the server")
        attributes = {k: v for k, v in doc.items() if k not in ITEM_SERVER_FIELDS}
        if (
            attributes != item.attributes
            and order.state != OrderState.ACKNOWLEDGED
            and not _supplies_information(order, item.id, item.attributes, attributes)
        ):
            raise PatchConflict(
                f"{path}: items can change only before the order starts; service order "
                f"{order.id} is {order.state}"
            )
        order.replace_item_attributes(item.id, attributes, now=now, actor=actor)


def _supplies_information(
    order: ServiceOrder, item_id: str, before: dict[str, Any], after: dict[str, Any]
) -> bool:
    """A pending order accepts the service characteristics it asked for (an errorMessage of code
    MISSING_INFORMATION naming them, docs/coordination.md), and no other change to the item."""
    if order.state != OrderState.PENDING:
        return False
    asked = {
        str((m.get("informationRequired") or {}).get("characteristic"))
        for m in order.error_messages
        if m.get("code") == "MISSING_INFORMATION"
        and any(ref.get("itemId") == item_id for ref in m.get("serviceOrderItem") or [])
    }
    service_before, service_after = before.get("service") or {}, after.get("service") or {}
    rest = ("service",)
    if {k: v for k, v in before.items() if k not in rest} != {
        k: v for k, v in after.items() if k not in rest
    }:
        return False
    chars = ("serviceCharacteristic",)
    if {k: v for k, v in service_before.items() if k not in chars} != {
        k: v for k, v in service_after.items() if k not in chars
    }:
        return False

    def others(service: dict[str, Any]) -> list[Any]:
        return [
            c
            for c in service.get("serviceCharacteristic") or []
            if not (isinstance(c, dict) and c.get("name") in asked)
        ]

    return bool(asked) and others(service_before) == others(service_after)


def _flatten(items: list[dict[str, Any]], path: str) -> Any:
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        yield item_path, item
        yield from _flatten(item.get("serviceOrderItem") or [], f"{item_path}.serviceOrderItem")
