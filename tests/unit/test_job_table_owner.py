"""One job manager owns every statement on the job table: no other module names it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import provtrack

PACKAGE = Path(provtrack.__file__).parent
OWNERS = {"adapters/store/jobs.py", "adapters/store/tables.py"}  # the manager, and the table itself
SQL_ON_JOB = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+job\b", re.IGNORECASE)


def strangers() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in OWNERS or "/migrations/" in name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "provtrack.adapters.store.tables"
                and any(alias.name == "job" for alias in node.names)
            ):
                found.append(f"{name} imports the job table")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and SQL_ON_JOB.search(node.value)
            ):
                found.append(f"{name} has SQL on the job table: {node.value[:60]!r}")
    return found


def test_only_the_job_manager_touches_the_job_table() -> None:
    assert strangers() == []
