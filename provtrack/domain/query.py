"""TMF630 query conventions: attribute filtering, sorting, paging and field selection.

`parse_query` turns the raw query string of a list request into a `Query`; the store compiles its
conditions to SQL. `select_fields` applies `fields=` to a document. Both are pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from provtrack.domain.clock import InvalidDateTime, normalise_datetime
from provtrack.domain.limits import DEFAULT_LIMITS, Limits

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
Kind = Literal["text", "number", "datetime"]

OPERATORS: tuple[Op, ...] = ("eq", "ne", "gt", "gte", "lt", "lte")
# URL forms of the comparison operators (`orderDate>=2026-01-01`, percent-encoded or not).
SYMBOL_OPERATORS: dict[str, Op] = {">=": "gte", "<=": "lte", "!=": "ne", ">": "gt", "<": "lt", "=": "eq"}
_OPERATOR = re.compile(r"(>=|<=|!=|>|<|=)")
PAGING_PARAMETERS = frozenset({"fields", "offset", "limit", "sort", "asOf"})
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$", re.ASCII
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$", re.ASCII)  # ASCII: a database reads no other digits
MAX_NUMBER_LENGTH = 30  # digits a filter compares as a number: both databases compare it as a double
MAX_OFFSET = 2**31 - 1
MAX_PATH_LENGTH = 256
_PATH = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*(\.@?[A-Za-z_][A-Za-z0-9_]*){0,15}")  # 16 steps at most


class InvalidQuery(ValueError):
    """A query parameter that cannot be understood; `parameter` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter[:100]  # an error quotes what it was given, not all of it
        super().__init__(f"{self.parameter}: {message}")


@dataclass(frozen=True, slots=True)
class Value:
    kind: Kind
    text: str  # normalised: canonical date-time, or the number as written

    @property
    def number(self) -> float:
        return float(self.text)


@dataclass(frozen=True, slots=True)
class Condition:
    """`path op value`; several values of an `eq` condition are alternatives (OR)."""

    path: tuple[str, ...]
    op: Op
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class SortKey:
    path: tuple[str, ...]
    descending: bool


@dataclass(frozen=True, slots=True)
class Query:
    conditions: tuple[Condition, ...] = ()
    sort: tuple[SortKey, ...] = ()
    offset: int = 0
    limit: int = 100
    fields: FieldTree | None = None


FieldTree = dict[str, "FieldTree | None"]  # None: the whole attribute


def parse_query(
    raw_query: str,
    *,
    default_limit: int,
    max_limit: int,
    enums: dict[tuple[str, ...], tuple[str, ...]] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Query:
    """Parse a raw query string (`a=x,y&b.gt=3&sort=-orderDate&offset=0&limit=10&fields=state`).

    An attribute named `...Date` takes date-times only (`orderDate.gt=notadate` is refused, not a
    text comparison that matches nothing)."""
    enums = enums or {}
    terms = 0
    conditions: dict[tuple[tuple[str, ...], Op], list[Value]] = {}
    ranges: list[Condition] = []
    sort: tuple[SortKey, ...] = ()
    offset, limit = 0, default_limit
    fields: FieldTree | None = None
    for part in re.split(r"[&;]", raw_query):
        if not part:
            continue
        key, op, value = _split_parameter(part)
        if key in PAGING_PARAMETERS:
            if op != "eq":
                raise InvalidQuery(key, "takes the form name=value")
            if key == "offset":
                offset = _non_negative_int("offset", value)
            elif key == "limit":
                limit = _non_negative_int("limit", value)
                if limit > max_limit:
                    raise InvalidQuery("limit", f"{limit} is over the maximum of {max_limit}")
                if limit == 0:
                    raise InvalidQuery("limit", "must be at least 1")
            elif key == "sort":
                sort = parse_sort(value, max_terms=limits.sort_terms)
            elif key == "fields":
                fields = parse_fields(value)
            continue
        terms += 1
        if terms > limits.filter_terms:
            raise InvalidQuery(key, f"a query has at most {limits.filter_terms} attribute filters")
        if len(value) > limits.string_length:
            raise InvalidQuery(key, f"the value is longer than {limits.string_length} characters")
        path, op = _path_and_operator(key, op)
        texts = _split_values(value) if op == "eq" else [_unquote(value)]
        if len(texts) > limits.filter_values:
            raise InvalidQuery(key, f"at most {limits.filter_values} alternatives")
        values = tuple(_typed(key, v, date=path[-1].endswith("Date")) for v in texts)
        allowed = enums.get(path)
        if allowed is not None:
            for v in values:
                if v.text not in allowed:
                    raise InvalidQuery(key, f"{v.text!r} is not one of {', '.join(allowed)}")
        if op in ("eq",):
            conditions.setdefault((path, op), []).extend(values)
        else:
            ranges.append(Condition(path, op, values))
    merged = [Condition(path, op, tuple(vals)) for (path, op), vals in conditions.items()]
    return Query(tuple(merged + ranges), sort, offset, limit, fields)


def parse_sort(value: str, *, max_terms: int = DEFAULT_LIMITS.sort_terms) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for token in value.split(","):
        token = token.strip()
        if not token:
            continue
        if len(keys) == max_terms:
            raise InvalidQuery("sort", f"at most {max_terms} attributes")
        descending = token.startswith("-")
        name = token.lstrip("+-").strip()
        if len(name) > MAX_PATH_LENGTH or not _PATH.fullmatch(name):
            raise InvalidQuery("sort", f"{token[:100]!r} is not an attribute name")
        keys.append(SortKey(tuple(name.split(".")), descending))
    return tuple(keys)


def parse_fields(value: str) -> FieldTree:
    """`fields=state,serviceOrderItem.id` -> {"state": None, "serviceOrderItem": {"id": None}}."""
    tree: FieldTree = {}
    if value.strip() == "none":
        return tree
    for token in value.split(","):
        token = token.strip()
        if not token:
            continue
        if len(token) > MAX_PATH_LENGTH or not _PATH.fullmatch(token):
            raise InvalidQuery("fields", f"{token[:100]!r} is not an attribute name")
        node = tree
        parts = token.split(".")
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            if name in node and node[name] is None:
                break  # the whole attribute is already selected
            if last:
                node[name] = None
            else:
                child = node.get(name)
                if child is None:
                    child = {}
                    node[name] = child
                node = child
    return tree


def select_fields(doc: dict[str, Any], fields: FieldTree) -> dict[str, Any]:
    """Keep the selected attributes; `id` and `href` are always kept (TMF630)."""
    selected: dict[str, Any] = {k: doc[k] for k in ("id", "href") if k in doc}
    selected.update(_select(doc, fields))
    return selected


def _select(doc: dict[str, Any], fields: FieldTree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sub in fields.items():
        if name not in doc:
            continue
        value = doc[name]
        if sub is None:
            out[name] = value
        elif isinstance(value, list):
            out[name] = [_select(v, sub) if isinstance(v, dict) else v for v in value]
        elif isinstance(value, dict):
            out[name] = _select(value, sub)
        else:
            out[name] = value
    return out


def _split_parameter(part: str) -> tuple[str, Op, str]:
    # A literal "+" stays a plus: in a filter it is far more often a time-zone offset
    # (orderDate.gt=2026-11-01T10:00:00+02:00) than a form-encoded space (send %20 for that).
    decoded = unquote(part)
    if "\x00" in decoded:
        raise InvalidQuery("query", "NUL characters (%00) are not allowed")
    match = _OPERATOR.search(decoded)
    if match is None or match.start() == 0:
        raise InvalidQuery(decoded[:100], "a filter takes the form attribute=value")
    return decoded[: match.start()].strip(), SYMBOL_OPERATORS[match.group(1)], decoded[match.end() :]


def _path_and_operator(key: str, op: Op) -> tuple[tuple[str, ...], Op]:
    if len(key) > MAX_PATH_LENGTH or not _PATH.fullmatch(key):
        raise InvalidQuery(key, "is not an attribute name")
    parts = key.split(".")
    if len(parts) > 1 and parts[-1] in OPERATORS:
        if op != "eq":
            raise InvalidQuery(key, "give the operator once: attribute.gt=value or attribute>value")
        operator: Op = parts[-1]
        return tuple(parts[:-1]), operator
    return tuple(parts), op


def _split_values(value: str) -> list[str]:
    """Split `a,b,"c,d"` on commas outside quotes and drop the quotes."""
    values, current, quote = [], [], ""
    for ch in value:
        if quote:
            if ch == quote:
                quote = ""
            else:
                current.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(ch)
    values.append("".join(current))
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _typed(parameter: str, text: str, *, date: bool = False) -> Value:
    if _DATETIME.match(text):
        try:
            return Value("datetime", normalise_datetime(text))
        except InvalidDateTime as exc:
            raise InvalidQuery(parameter, str(exc)) from None
    if date:
        shown = repr(text if len(text) <= 64 else text[:64] + "...")
        raise InvalidQuery(parameter, f"{shown} is not an ISO 8601 date-time")
    if _NUMBER.match(text):
        if len(text) > MAX_NUMBER_LENGTH:
            raise InvalidQuery(parameter, f"a number has at most {MAX_NUMBER_LENGTH} digits")
        return Value("number", text)
    return Value("text", text)


def _non_negative_int(name: str, value: str) -> int:
    if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
        raise InvalidQuery(name, "must not be negative")
    if not value.isascii() or not value.isdigit():
        raise InvalidQuery(name, f"{value[:64]!r} is not a whole number")
    if len(value) > 10 or int(value) > MAX_OFFSET:
        raise InvalidQuery(name, f"must be at most {MAX_OFFSET}")
    return int(value)
