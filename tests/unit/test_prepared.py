"""`Prepared` statements: compiled once per dialect, with parameters bound the way each driver takes
them (positional for SQLite, named for PostgreSQL), values written into the statement included."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from provtrack.adapters.store.prepared import Prepared

activity = Table(
    "activity",
    MetaData(),
    Column("id", Text, primary_key=True),
    Column("state", Text),
    Column("reason", Text),
    Column("attempt", Integer),
)
# The SET clause comes before the WHERE clause in the SQL, whatever order the parameters are given in.
RETRY = Prepared(
    update(activity)
    .where(activity.c.id == bindparam("b_id"))
    .values(state=bindparam("state"), reason=None, attempt=activity.c.attempt + 1)
)
PARAMS = {"b_id": "act-1", "state": "inProgress"}


def test_for_sqlite_the_parameter_names_follow_the_placeholders_in_order() -> None:
    compiled = RETRY.sql(sqlite.dialect())

    assert (
        compiled.text
        == "UPDATE activity SET state=?, reason=?, attempt=(activity.attempt + ?) WHERE activity.id = ?"
    )
    assert compiled.names == ("state", "reason", "attempt_1", "b_id")
    assert compiled.bind(PARAMS) == ("inProgress", None, 1, "act-1")


def test_for_postgresql_the_parameters_are_named_and_the_written_values_bound_too() -> None:
    compiled = RETRY.sql(psycopg.dialect())

    assert compiled.names is None
    assert "%(state)s" in compiled.text
    assert "%(b_id)s" in compiled.text
    bound = compiled.bind(PARAMS)
    assert {name: bound[name] for name in ("state", "reason", "attempt_1", "b_id")} == {
        "state": "inProgress",
        "reason": None,
        "attempt_1": 1,
        "b_id": "act-1",
    }


def test_a_given_parameter_wins_over_a_value_written_into_the_statement() -> None:
    given = {**PARAMS, "reason": "retried by an operator"}

    assert RETRY.sql(sqlite.dialect()).bind(given)[1] == "retried by an operator"
    assert RETRY.sql(psycopg.dialect()).bind(given)["reason"] == "retried by an operator"


def test_a_statement_is_compiled_once_per_dialect() -> None:
    statement = Prepared(update(activity).values(state=bindparam("state")))

    assert statement.sql(sqlite.dialect()) is statement.sql(sqlite.dialect())
    assert statement.sql(sqlite.dialect()) is not statement.sql(psycopg.dialect())
