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


Signature = tuple[int, int] | None  # (mtime in ns, size) of the file; None when it cannot be read


class ReloadingPolicy:
    """The policy in force, re-read when its file changes.

    `check()` takes one look at the file (a `PolicyWatcher` thread calls it every `interval`
    seconds); without a watcher, reading the policy looks at most once every `interval` seconds. A
    file that no longer validates (or has gone) is refused at the look that sees it, its problems
    logged with their lines; the last good policy stays in force.
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
        self._signature = self._stat()  # before reading: a change while it is read is seen next time
        self._policy = Policy() if self.file is None else load_policy(self.file)
        self._checked = clock()
        self.problems: list[str] = []

    def _stat(self) -> Signature:
        if self.file is None:
            return None
        try:
            stat = self.file.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def __call__(self) -> Policy:
        if self.file is not None and self.clock() - self._checked >= self.interval:
            self.check()
        return self._policy

    def check(self) -> bool | None:
        """One look at the file: None if it has not changed since the last look, True if it changed
        and was reloaded, False if it changed and was refused (the last good policy stays)."""
        if self.file is None:
            return None
        with self._lock:
            self._checked = self.clock()
            signature = self._stat()
            if signature == self._signature:
                return None
            self._signature = signature
            try:
                if signature is None:
                    raise InvalidPolicy(str(self.file), [Problem(None, "the policy file cannot be read")])
                policy = load_policy(self.file)
            except InvalidPolicy as exc:
                self.problems = [str(p) for p in exc.problems]
                log.error(
                    "policy reload rejected: the file has problems; the last good policy stays",
                    file=str(self.file),
                    lines=sorted({p.line for p in exc.problems if p.line is not None}),
                    problems=self.problems,
                )
                return False
            self._policy = policy
            self.problems = []
            log.info("policy reloaded", file=str(self.file), rules=len(policy.rules))
            return True


class PolicyWatcher:
    """A daemon thread that looks at the policy file every `interval` seconds (the policy's own by
    default) until stopped, so a change is applied, or a broken file reported, at once rather than
    when an order next changes. `on_change` hears each change it saw: True reloaded, False refused."""

    def __init__(
        self,
        policy: ReloadingPolicy,
        *,
        interval: float | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.policy = policy
        self.interval = policy.interval if interval is None else interval
        self.on_change = on_change
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> PolicyWatcher:
        if self.policy.file is not None and self.thread is None:
            self.thread = threading.Thread(target=self._watch, name="provtrack-policy-watcher", daemon=True)
            self.thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                changed = self.policy.check()
            except Exception:  # a failed look must not end the watch; the next one tries again
                log.exception("policy watch failed to look at the file", file=str(self.policy.file))
                continue
            if changed is not None and self.on_change is not None:
                self.on_change(changed)

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> PolicyWatcher:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
