"""The policy file watched: each look applies a change or refuses a broken file at once, logging it
with its lines; the last good policy stays. Looks are taken one at a time, without a clock."""

from __future__ import annotations

import os
import queue
from pathlib import Path

from structlog.testing import capture_logs

from provtrack.adapters.policy_file import PolicyWatcher, ReloadingPolicy

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


def write(path: Path, text: str, mtime: float) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def replace(path: Path, text: str, mtime: float) -> None:
    """Write the file as editors save it, in one rename, so a watching thread sees one change."""
    staged = path.with_suffix(".saving")
    write(staged, text, mtime)
    staged.replace(path)


def rule_names(policy: ReloadingPolicy) -> list[str]:
    return [rule.name for rule in policy().rules]


def policy_file(tmp_path: Path) -> tuple[Path, ReloadingPolicy]:
    file = tmp_path / "policy.yaml"
    write(file, GOOD, 1000)
    return file, ReloadingPolicy(file, interval=3600)  # reading it never looks: only check() does


def test_a_look_at_an_unchanged_file_does_nothing(tmp_path: Path) -> None:
    _, policy = policy_file(tmp_path)
    with capture_logs() as logs:
        assert policy.check() is None
    assert logs == []


def test_a_broken_file_is_refused_at_the_first_look_with_its_lines_and_the_last_good_policy_stays(
    tmp_path: Path,
) -> None:
    file, policy = policy_file(tmp_path)
    write(file, BAD, 2000)

    with capture_logs() as logs:
        assert policy.check() is False
        assert policy.check() is None  # refused once, not at every look

    assert rule_names(policy) == ["any-late"]
    [entry] = logs
    assert entry["log_level"] == "error"
    assert entry["event"].startswith("policy reload rejected")
    assert entry["file"] == str(file)
    assert entry["lines"] == [4, 6]
    assert entry["problems"] == [
        "line 4: when: cannot parse 'order.level ==': the expression ends too early at column 15",
        "line 6: unknown action 'frobnicate'; use one of notify, raisePriority, assign, note, hold",
    ]
    assert policy.problems == entry["problems"]


def test_a_good_file_is_reloaded_at_the_next_look_and_clears_the_problems(tmp_path: Path) -> None:
    file, policy = policy_file(tmp_path)
    write(file, BAD, 2000)
    policy.check()
    write(file, GOOD.replace("any-late", "renamed"), 3000)

    with capture_logs() as logs:
        assert policy.check() is True

    assert rule_names(policy) == ["renamed"]
    assert policy.problems == []
    assert logs == [
        {"event": "policy reloaded", "log_level": "info", "file": str(file), "rules": 1},
    ]


def test_a_rewrite_with_the_same_modification_time_is_seen_by_its_size(tmp_path: Path) -> None:
    file, policy = policy_file(tmp_path)
    write(file, GOOD.replace("any-late", "late-orders"), 1000)

    assert policy.check() is True
    assert rule_names(policy) == ["late-orders"]


def test_a_file_that_goes_away_is_refused_once_and_reloaded_when_it_comes_back(tmp_path: Path) -> None:
    file, policy = policy_file(tmp_path)
    file.unlink()

    with capture_logs() as logs:
        assert policy.check() is False
        assert policy.check() is None
    assert [entry["problems"] for entry in logs] == [["the policy file cannot be read"]]
    assert rule_names(policy) == ["any-late"]

    write(file, GOOD.replace("any-late", "back"), 4000)
    assert policy.check() is True
    assert rule_names(policy) == ["back"]


def test_without_a_watcher_reading_the_policy_looks_once_per_interval(tmp_path: Path) -> None:
    file = tmp_path / "policy.yaml"
    write(file, GOOD, 1000)
    now = [0.0]
    policy = ReloadingPolicy(file, interval=1.0, clock=lambda: now[0])
    write(file, BAD, 2000)

    assert rule_names(policy) == ["any-late"]
    assert policy.problems == []  # not looked yet
    now[0] = 1.0
    assert rule_names(policy) == ["any-late"]
    assert [p[:6] for p in policy.problems] == ["line 4", "line 6"]


def test_the_watcher_refuses_a_broken_file_without_waiting_for_an_order_to_change(tmp_path: Path) -> None:
    file, policy = policy_file(tmp_path)
    changes: queue.Queue[bool] = queue.Queue()
    watcher = PolicyWatcher(policy, interval=0.001, on_change=changes.put)

    with watcher:
        replace(file, BAD, 2000)
        assert changes.get(timeout=10) is False
        replace(file, GOOD.replace("any-late", "fixed"), 3000)
        assert changes.get(timeout=10) is True
        assert watcher.thread is not None

    assert not watcher.thread.is_alive()
    assert rule_names(policy) == ["fixed"]


def test_there_is_nothing_to_watch_without_a_policy_file() -> None:
    with PolicyWatcher(ReloadingPolicy(None)) as watcher:
        assert watcher.thread is None
