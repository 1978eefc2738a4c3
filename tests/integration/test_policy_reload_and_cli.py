"""The policy file: reloaded without a restart (the last good one kept), checked and dry-run by the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from provtrack.adapters.policy_file import ReloadingPolicy
from provtrack.cli import app
from provtrack.domain.clock import format_datetime
from tests.integration.jeopardy_harness import Harness, harness, hours

__all__ = ["harness"]

GOOD = """
rules:
  - name: any-late
    when: order.level == "late"
    ladder:
      - actions: [{note: "late"}]
"""
BAD = """
rules:
  - name: any-late
    when: order.level ==
    ladder:
      - actions: [{frobnicate: 1}]
"""


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, mtime: float) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def test_the_policy_reloads_when_its_file_changes_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    file = tmp_path / "policy.yaml"
    write(file, GOOD, 1000)
    ticks = Ticks()
    source = ReloadingPolicy(file, clock=ticks)
    assert [r.name for r in source().rules] == ["any-late"]

    write(file, GOOD.replace("any-late", "renamed"), 2000)
    assert [r.name for r in source().rules] == ["any-late"]  # looked at most once a second
    ticks.now = 1.0
    assert [r.name for r in source().rules] == ["renamed"]

    write(file, BAD, 3000)
    ticks.now = 2.0
    assert [r.name for r in source().rules] == ["renamed"]
    assert any("line 4" in p for p in source.problems)
    assert any("line 6" in p and "frobnicate" in p for p in source.problems)


def test_policy_check_lists_problems_with_lines_and_fails(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(BAD, encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(file)])
    assert result.exit_code == 1
    assert "line 4: when: cannot parse" in result.output
    assert "line 6: unknown action 'frobnicate'" in result.output
    ok = CliRunner().invoke(app, ["policy", "check", "demo"])
    assert ok.exit_code == 0, ok.output
    assert "4 rules" in ok.output


def test_policy_simulate_shows_what_would_fire_for_whom_without_doing_it(
    harness: Harness, database_url: str
) -> None:
    h = harness
    late = h.create(category="business", requestedCompletionDate=format_datetime(h.t0 + hours(1)))
    h.create(category="residential", requestedCompletionDate=format_datetime(h.t0 + hours(240)))
    h.at(h.t0 + hours(1))
    assert h.level(late) == "late"
    before = h.timeline(late, "")
    at = format_datetime(h.t0 + hours(9))
    result = CliRunner().invoke(
        app, ["policy", "simulate", "demo", "--database", database_url, "--at", at, "--show", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "2 open orders" in result.output
    assert "business-order-in-jeopardy" in result.output
    assert "provisioning-desk (https://desk.example.net/hooks/provtrack)" in result.output
    assert h.timeline(late, "") == before  # nothing was done
