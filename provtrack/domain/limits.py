"""What provtrack accepts from outside, bounded: nesting, strings, items, characteristics, query terms.

Every body, query and path is checked against these limits where it enters (the API), the same way
on SQLite and PostgreSQL, so that nothing a database or the engine cannot handle is ever stored:
a NUL character that PostgreSQL refuses in `text` and `jsonb`, a document nested so deep that
recursive code fails, a string or a list so long that one order costs a megabyte per read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# JSON numbers that every store and the engine read back as they were written: 64-bit integers,
# finite doubles (orjson refuses the others when it writes a document).
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """The defaults are generous for TMF641 orders and documented in docs/security.md; each is a
    PROVTRACK_MAX_* setting."""

    depth: int = 32  # nesting of objects and arrays in one document
    string_length: int = 16_384  # characters of one string value
    key_length: int = 256  # characters of one attribute name
    items_per_order: int = 100  # serviceOrderItem, nested items included
    characteristics_per_service: int = 200  # serviceCharacteristic of one service
    sort_terms: int = 8  # attributes in `sort=`
    filter_terms: int = 20  # attribute filters in one query
    filter_values: int = 100  # alternatives of one filter (`state=a,b,c`)
    patch_operations: int = 100  # operations of one JSON patch
    document_nodes: int = 100_000  # values in an order a JSON patch's `copy` leaves


DEFAULT_LIMITS = Limits()


class LimitExceeded(ValueError):
    """Input over one of the limits; `path` names where."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class UnsafeText(ValueError):
    """A string no store can keep as it is (a NUL character); `path` names where."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


def check_document(document: Any, limits: Limits = DEFAULT_LIMITS, *, root: str = "body") -> None:
    """Check a parsed JSON document: depth, attribute names and strings (length, no NUL), numbers
    (64-bit integers, finite doubles). Iterative, so a deep document cannot exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(document, root, 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            check_text(value, path, limits.string_length)
        elif isinstance(value, dict):
            if depth >= limits.depth:
                raise LimitExceeded(path, f"nested deeper than {limits.depth} levels")
            for key, child in value.items():
                check_text(key, f"{path} (attribute name)", limits.key_length)
                stack.append((child, _child(path, key, root), depth + 1))
        elif isinstance(value, list):
            if depth >= limits.depth:
                raise LimitExceeded(path, f"nested deeper than {limits.depth} levels")
            for index, child in enumerate(value):
                stack.append((child, f"{path}[{index}]", depth + 1))
        elif isinstance(value, int) and not -_MAX_INT - 1 <= value <= _MAX_INT:
            raise LimitExceeded(path, "integers must fit in 64 bits")


def check_text(value: str, path: str, max_length: int) -> None:
    if "\x00" in value:
        raise UnsafeText(path, "NUL characters (\\u0000) are not allowed")
    if len(value) > max_length:
        raise LimitExceeded(path, f"longer than {max_length} characters")


def check_order_size(order: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> None:
    """Items per order (nested included) and characteristics per service."""
    count = 0
    pending: list[tuple[Any, str]] = [(order.get("serviceOrderItem"), "serviceOrderItem")]
    while pending:
        items, path = pending.pop()
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            count += 1
            if count > limits.items_per_order:
                raise LimitExceeded(
                    "serviceOrderItem", f"more than {limits.items_per_order} items (nested items included)"
                )
            service = item.get("service")
            characteristics = service.get("serviceCharacteristic") if isinstance(service, dict) else None
            if (
                isinstance(characteristics, list)
                and len(characteristics) > limits.characteristics_per_service
            ):
                raise LimitExceeded(
                    f"{path}[{index}].service.serviceCharacteristic",
                    f"more than {limits.characteristics_per_service} characteristics",
                )
            pending.append((item.get("serviceOrderItem"), f"{path}[{index}].serviceOrderItem"))


def _child(path: str, key: str, root: str) -> str:
    return key if path == root else f"{path}.{key}"
