"""Statements compiled once per dialect and run on the driver's cursor, in the caller's transaction.

SQLAlchemy Core checks, caches and wraps every execution: on the engine's hot path that machinery
costs several times what SQLite takes to run the statement itself (a lookup by key: ≈ 31 µs of CPU
through Core, ≈ 5 µs here; docs/benchmarks.md). A `Prepared` statement is still written as a Core construct, so its SQL follows
the tables and each dialect's quoting and placeholders; it is compiled once per dialect and then
executed on the DBAPI connection behind the `Connection`, inside the same transaction.

For statements whose parameters need no type processing (text and integers) and hold no expanding
`IN` list: everything the store writes is text or integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

Params = Mapping[str, Any]


class Prepared:
    """One statement, compiled on first use for each dialect."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def sql(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            # Values written into the statement (`.values(x=None)`) are parameters too: kept here.
            fixed = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
            names = tuple(compiled.positiontup or ()) if compiled.positional else None
            found = self._compiled[dialect.name] = _Compiled(compiled.string, names, fixed)
        return found

    def execute(self, conn: Connection, params: Params | None = None) -> Any:
        """Run once; returns the DBAPI cursor (rows, `rowcount`)."""
        compiled = self.sql(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.text, compiled.bind(params or {}))
        return cursor

    def executemany(self, conn: Connection, rows: Sequence[Params]) -> int:
        """Run once per row; returns the number of rows changed."""
        if not rows:
            return 0
        compiled = self.sql(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if len(rows) == 1:  # psycopg runs executemany in a pipeline: for one row, a round trip more
            cursor.execute(compiled.text, compiled.bind(rows[0]))
        else:
            cursor.executemany(compiled.text, [compiled.bind(row) for row in rows])
        count: int = cursor.rowcount
        cursor.close()
        return count

    def rowcount(self, conn: Connection, params: Params | None = None) -> int:
        cursor = self.execute(conn, params)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def first(self, conn: Connection, params: Params | None = None) -> tuple[Any, ...] | None:
        cursor = self.execute(conn, params)
        row = cursor.fetchone()
        cursor.close()
        return row  # type: ignore[no-any-return]

    def all(self, conn: Connection, params: Params | None = None) -> list[tuple[Any, ...]]:
        cursor = self.execute(conn, params)
        rows = cursor.fetchall()
        cursor.close()
        return rows  # type: ignore[no-any-return]

    def scalar(self, conn: Connection, params: Params | None = None) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class _Compiled:
    text: str
    names: tuple[str, ...] | None  # positional placeholders (SQLite): parameter names in order
    fixed: dict[str, Any]  # values written into the statement

    def bind(self, params: Params) -> Any:
        if self.names is None:
            return {**self.fixed, **params} if self.fixed else params
        fixed = self.fixed
        return tuple(params[name] if name in params else fixed[name] for name in self.names)
