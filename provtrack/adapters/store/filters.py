"""Compile TMF630 filter conditions and sort keys to SQL over a document column.

Attributes that have a column use it (and its index). Any other attribute is read from the JSON
document: on PostgreSQL with a SQL/JSON path (lax mode steps into arrays by itself); on SQLite with
`json_extract`, and `json_each` for each array on the way (TMF641's array attributes are listed
below), so `serviceOrderItem.service.serviceSpecification.id=x` matches an order with any such item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Float,
    Numeric,
    Table,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    text,
)
from sqlalchemy.sql.elements import BindParameter, TextClause

from provtrack.domain.query import Condition, SortKey

# Attributes of TMF641 (and the types it embeds) whose value is an array.
ARRAY_ATTRIBUTES = frozenset(
    {
        "serviceOrderItem", "note", "relatedParty", "externalReference", "orderRelationship",
        "jeopardyAlert", "milestone", "errorMessage", "serviceOrderItemRelationship",
        "serviceCharacteristic", "supportingService", "supportingResource", "serviceRelationship",
        "place", "feature", "relatedEntity", "featureCharacteristic",
    }
)  # fmt: skip

_SQL_OP = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_JSONPATH_OP = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class FilterCompiler:
    def __init__(self, table: Table, columns: dict[tuple[str, ...], str], *, dialect: str) -> None:
        self.table = table
        self.columns = columns
        self.dialect = dialect
        self._counter = 0

    def where(self, conditions: Sequence[Condition]) -> ColumnElement[bool]:
        return and_(*(self.condition(c) for c in conditions))

    def condition(self, cond: Condition) -> ColumnElement[bool]:
        column = self.columns.get(cond.path)
        if column is not None:
            return self._column_condition(self.table.c[column], cond)
        if self.dialect == "postgresql":
            return self._postgres_condition(cond)
        return self._sqlite_condition(cond)

    def order_by(self, keys: Sequence[SortKey]) -> list[Any]:
        clauses: list[Any] = []
        for key in keys:
            column = self.columns.get(key.path)
            if column is not None:
                expr: Any = self.table.c[column]
            elif self.dialect == "postgresql":
                expr = literal_column(f"{self.table.name}.document::jsonb").op("#>>")(
                    literal_column("'{" + ",".join(_quote_pg_path(p) for p in key.path) + "}'")
                )
            else:
                expr = func.json_extract(self.table.c.document, _sqlite_path(key.path))
            clauses.append(expr.desc() if key.descending else expr.asc())
        return clauses

    # --- columns ------------------------------------------------------------------------------

    def _column_condition(self, column: Any, cond: Condition) -> ColumnElement[bool]:
        if cond.op == "eq":
            values = [v.text for v in cond.values]
            result: ColumnElement[bool] = column == values[0] if len(values) == 1 else column.in_(values)
            return result
        value = cond.values[0]
        if value.kind != "number":
            return _compare(column, cond.op, value.text)
        if self.dialect == "sqlite":
            # Only text that reads as a JSON number compares (CAST would read "high" as 0).
            is_number = case((func.json_valid(column) == 1, func.json_type(column)), else_=None)
            numeric_text = _compare(cast(column, Float), cond.op, value.number)
            return and_(is_number.in_(("integer", "real")), numeric_text)
        numeric = case((column.op("~")(r"^-?[0-9]+(\.[0-9]+)?$"), cast(column, Numeric)), else_=None)
        return _compare(numeric, cond.op, value.number)

    # --- SQLite -------------------------------------------------------------------------------

    def _sqlite_condition(self, cond: Condition) -> ColumnElement[bool]:
        segments = _split_at_arrays(cond.path)
        clause: ColumnElement[bool] = self._sqlite_nested(
            f"{self.table.name}.document", segments, cond, depth=0
        )
        return clause

    def _sqlite_nested(
        self, source: str, segments: list[tuple[str, ...]], cond: Condition, *, depth: int
    ) -> Any:
        head, rest = segments[0], segments[1:]
        if not rest:
            value = f"json_extract({source}, '{_sqlite_path(head)}')"
            return self._sqlite_compare(value, cond)
        alias = f"j{depth}_{self._next()}"
        inner = self._sqlite_nested(f"{alias}.value", rest, cond, depth=depth + 1)
        inner_sql, params = _render(inner)
        return text(
            f"EXISTS (SELECT 1 FROM json_each({source}, '{_sqlite_path(head)}') AS {alias} WHERE {inner_sql})"
        ).bindparams(*params)

    def _sqlite_compare(self, value_sql: str, cond: Condition) -> TextClause:
        params: list[BindParameter[Any]] = []
        if cond.op == "eq":
            names = []
            for v in cond.values:
                name = f"f{self._next()}"
                names.append(f":{name}")
                params.append(bindparam(name, v.text))
            sql = f"CAST({value_sql} AS TEXT) IN ({', '.join(names)})"
        else:
            v = cond.values[0]
            name = f"f{self._next()}"
            if v.kind == "number":
                # JSON numbers only, as on PostgreSQL: CAST would read "abc" as 0 and "+336..." as a number.
                params.append(bindparam(name, v.number))
                sql = f"typeof({value_sql}) IN ('integer', 'real') AND {value_sql} {_SQL_OP[cond.op]} :{name}"
            else:
                params.append(bindparam(name, v.text))
                sql = f"CAST({value_sql} AS TEXT) {_SQL_OP[cond.op]} :{name}"
            sql = f"({value_sql} IS NOT NULL AND {sql})"
        return text(sql).bindparams(*params)

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _postgres_condition(self, cond: Condition) -> ColumnElement[bool]:
        path = "$" + "".join(f'."{_escape_jsonpath(p)}"' for p in cond.path)
        op = _JSONPATH_OP[cond.op]
        alternatives = []
        variables: dict[str, Any] = {}
        for v in cond.values:
            n = self._next()
            if v.kind != "number" or cond.op == "eq":
                # A number compared as text would order "500" after "1000": ranges take numbers only.
                alternatives.append(f"@ {op} $s{n}")
                variables[f"s{n}"] = v.text
            if v.kind == "number":
                alternatives.append(f"@ {op} $n{n}")
                variables[f"n{n}"] = v.number
        jsonpath = f"{path} ? ({' || '.join(alternatives)})"
        name = f"f{self._next()}"
        return text(
            f"jsonb_path_exists({self.table.name}.document::jsonb, CAST(:{name}_p AS jsonpath), "
            f"CAST(:{name}_v AS jsonb))"
        ).bindparams(bindparam(f"{name}_p", jsonpath), bindparam(f"{name}_v", _json(variables)))  # type: ignore[return-value]

    def _next(self) -> int:
        self._counter += 1
        return self._counter


def _compare(expr: Any, op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = expr.op(_SQL_OP[op])(value)
    return result


def _split_at_arrays(path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """("serviceOrderItem", "service", "id") -> [("serviceOrderItem",), ("service", "id")].

    A path that ends at an array ends with an empty segment: its elements are compared.
    """
    segments: list[tuple[str, ...]] = []
    current: list[str] = []
    for name in path:
        current.append(name)
        if name in ARRAY_ATTRIBUTES:
            segments.append(tuple(current))
            current = []
    segments.append(tuple(current))
    return segments


def _sqlite_path(path: tuple[str, ...]) -> str:
    return "$" + "".join(f'."{p}"' for p in path)


def _quote_pg_path(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _escape_jsonpath(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _render(clause: Any) -> tuple[str, list[Any]]:
    params = list(clause._bindparams.values()) if isinstance(clause, TextClause) else []
    return str(clause.text if isinstance(clause, TextClause) else clause), params


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
