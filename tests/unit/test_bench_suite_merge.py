"""`bench/suite.py --only` rewrites only what it ran: the generated section of docs/benchmarks.md keeps
the subsections and target rows of the benches it did not run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import suite  # a script of bench/, importable once its folder is on the path


def section(head: str, rows: list[str], parts: list[str]) -> str:
    table = ["| target (issue 16) | measured | met |", "|---|---|---|", *rows]
    return "\n\n".join([suite.BEGIN, head, "\n".join(table), *parts, suite.END])


OLD = section(
    "Run 2026-12-01 22:42Z.",
    ["| SQLite create | 20% | no |", "| list at 1 000 000 | 64.2 ms | no |"],
    ["### create-sqlite (138 s)\n\nold create figures", "### dashboard (90 s)\n\nold dashboard figures"],
)


def test_what_was_not_run_again_is_kept_and_what_was_is_replaced() -> None:
    new = section(
        "Run 2026-12-02 01:30Z.",
        ["| SQLite create | 22% | no |"],
        ["### create-sqlite (120 s, 2026-12-02 01:30Z)\n\nnew create figures"],
    )

    merged = suite.merged(OLD, new)

    assert merged == section(
        "Run 2026-12-02 01:30Z.",
        ["| SQLite create | 22% | no |", "| list at 1 000 000 | 64.2 ms | no |"],
        [
            "### create-sqlite (120 s, 2026-12-02 01:30Z)\n\nnew create figures",
            "### dashboard (90 s)\n\nold dashboard figures",
        ],
    )


def test_a_section_merged_into_itself_is_unchanged() -> None:
    assert suite.merged(OLD, OLD) == OLD


def test_subsections_follow_the_suites_order_whichever_run_they_come_from() -> None:
    new = section("Run later.", [], ["### events (20 s)\n\nevents figures"])

    merged = suite.merged(OLD, new)

    assert [line for line in merged.split("\n") if line.startswith("### ")] == [
        "### create-sqlite (138 s)",
        "### events (20 s)",
        "### dashboard (90 s)",
    ]
