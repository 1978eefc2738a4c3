"""Outbound webhooks: the HTTP POST of one signed event, and host name resolution for callback checks."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from provtrack.domain.webhooks import Attempt


class HttpSender:
    """POSTs event bodies with one shared connection pool; never follows redirects (SSRF).

    At most `per_subscriber` POSTs to one subscriber are in flight at once (one while it is failing),
    so a subscriber that hangs until the timeout holds that many worker threads, not all of them. A
    delivery that finds its subscriber at the limit waits at most `max_wait` for a slot, and otherwise
    comes back busy; `stalled` when the oldest POST in flight is older than `slow_after`.
    """

    def __init__(
        self,
        *,
        timeout: float,
        per_subscriber: int = 4,
        slow_after: float = 0.5,
        max_wait: float = 0.2,
        max_connections: int = 64,
    ) -> None:
        self.per_subscriber = per_subscriber
        self.slow_after = slow_after
        self.max_wait = max_wait
        self._in_flight: dict[str, list[float]] = {}
        self._changed = threading.Condition()
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"user-agent": "provtrack-webhooks"},
        )

    def post(
        self, url: str, body: bytes, headers: dict[str, str], *, subscriber: str, probing: bool = False
    ) -> Attempt:
        """`probing`: the subscriber is failing; one POST at a time tells whether it is back."""
        started, oldest = self._enter(subscriber, probing=probing)
        if started is None:
            stalled = probing or oldest > self.slow_after
            why = "has not answered for a while" if stalled else "is busy"
            return Attempt(
                None, f"subscriber {why}: deliveries to it are in flight", busy=True, stalled=stalled
            )
        try:
            response = self.client.post(
                url, content=body, headers={"content-type": "application/json", **headers}
            )
        except httpx.TimeoutException as exc:
            return Attempt(None, f"timed out: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")
        finally:
            self._leave(subscriber, started)
        return Attempt(response.status_code)

    def _enter(self, subscriber: str, *, probing: bool) -> tuple[float | None, float]:
        """(start mark, or None when no slot came free; age of its oldest POST in flight)."""
        limit = 1 if probing else self.per_subscriber
        deadline = time.monotonic() + (0.0 if probing else self.max_wait)
        with self._changed:
            while True:
                now = time.monotonic()
                starts = self._in_flight.setdefault(subscriber, [])
                if len(starts) < limit:
                    starts.append(now)
                    return now, 0.0
                oldest = now - min(starts)
                if oldest > self.slow_after or now >= deadline:
                    return None, oldest
                self._changed.wait(0.005)

    def _leave(self, subscriber: str, started: float) -> None:
        with self._changed:
            starts = self._in_flight[subscriber]
            starts.remove(started)
            if not starts:
                del self._in_flight[subscriber]
            self._changed.notify_all()

    def close(self) -> None:
        self.client.close()


def resolve(host: str) -> list[str]:
    """The addresses a host name resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})
