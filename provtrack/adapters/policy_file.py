"""Load a policy YAML file with the line of every key and entry, for error messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
import yaml

from provtrack.adapters.located_yaml import LineLoader
from provtrack.domain.policy import InvalidPolicy, Policy, Problem, read_policy

log = structlog.get_logger("provtrack.policy")
DEMO_POLICY = Path(__file__).resolve().parent.parent / "policy" / "demo.yaml"


def parse_policy_text(text: str, *, source: str) -> Policy:
    try:
        document = yaml.load(text, Loader=LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise InvalidPolicy(
            source, [Problem(mark.line + 1 if mark else None, f"not valid YAML: {exc.problem}")]
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidPolicy(source, [Problem(None, f"not valid YAML: {exc}")]) from None
    return read_policy(document, source=source)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; `demo` names the policy shipped with provtrack."""
    file = DEMO_POLICY if str(path) == "demo" else Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidPolicy(str(file), [Problem(None, f"cannot read the policy: {exc.strerror}")]) from None
    return parse_policy_text(text, source=str(file))


class ReloadingPolicy:
    """The policy in force, re-read when its file changes (looked at most once a second).

    A file that no longer validates is refused with its problems logged; the last good policy stays.
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.file = None if path is None else DEMO_POLICY if str(path) == "demo" else Path(path)
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._policy = Policy() if self.file is None else load_policy(self.file)
        self._mtime = self._stat()
        self._checked = clock()
        self.problems: list[str] = []

    def _stat(self) -> float | None:
        try:
            return None if self.file is None else self.file.stat().st_mtime
        except OSError:
            return None

    def __call__(self) -> Policy:
        if self.file is None or self.clock() - self._checked < self.interval:
            return self._policy
        with self._lock:
            self._checked = self.clock()
            mtime = self._stat()
            if mtime is None or mtime == self._mtime:
                return self._policy
            self._mtime = mtime
            try:
                self._policy = load_policy(self.file)
            except InvalidPolicy as exc:
                self.problems = [str(p) for p in exc.problems]
                log.error(
                    "policy not reloaded: it has problems; the last good policy stays",
                    file=str(self.file),
                    problems=self.problems,
                )
            else:
                self.problems = []
                log.info("policy reloaded", file=str(self.file), rules=len(self._policy.rules))
            return self._policy
