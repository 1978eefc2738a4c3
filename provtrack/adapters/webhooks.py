"""Outbound webhooks: the HTTP POST of one signed event, and host name resolution for callback checks.

Event deliveries pass the operator's callback policy: their connections are opened by a network
backend that resolves the host, checks every address against the policy and connects to one of
those very addresses, so a DNS answer that changed since the subscription (or between a check and
the connection) cannot lead the hub to an internal address. The URL keeps its host name, so the
`Host` header, TLS SNI and certificate checks are those of the callback as registered.
"""

from __future__ import annotations

import socket
import threading
import time
import typing
from collections.abc import Callable

import httpcore
import httpx

from provtrack.adapters import tracing
from provtrack.domain.events import CallbackPolicy, RefusedCallback, check_addresses
from provtrack.domain.webhooks import Attempt

Resolver = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """The addresses a host name resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


class HttpSender:
    """POSTs event bodies with shared connection pools; never follows redirects (SSRF).

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
        resolver: Resolver = resolve,
    ) -> None:
        self.per_subscriber = per_subscriber
        self.slow_after = slow_after
        self.max_wait = max_wait
        self._in_flight: dict[str, list[float]] = {}
        self._changed = threading.Condition()
        self._timeout = timeout
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._resolver = resolver
        self.client = self._client(limits=self._limits)  # unchecked: the policy file's webhooks
        self._checked: dict[CallbackPolicy, httpx.Client] = {}  # one pool per callback policy
        self._checked_lock = threading.Lock()

    def _client(self, **connections: typing.Any) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            headers={"user-agent": "provtrack-webhooks"},
            **connections,
        )

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        subscriber: str,
        probing: bool = False,
        policy: CallbackPolicy | None = None,
    ) -> Attempt:
        """`probing`: the subscriber is failing; one POST at a time tells whether it is back.
        `policy`: connect only to addresses it allows (else the attempt comes back `blocked`)."""
        started, oldest = self._enter(subscriber, probing=probing)
        if started is None:
            stalled = probing or oldest > self.slow_after
            why = "has not answered for a while" if stalled else "is busy"
            return Attempt(
                None, f"subscriber {why}: deliveries to it are in flight", busy=True, stalled=stalled
            )
        client = self.client if policy is None else self._checked_client(policy)
        try:
            response = client.post(
                url,
                content=body,
                headers={"content-type": "application/json", **tracing.outgoing(), **headers},
            )
        except RefusedCallback as exc:
            return Attempt(None, f"not sent, refused at delivery: {exc}", blocked=True)
        except httpx.TimeoutException as exc:
            return Attempt(None, f"timed out: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")
        finally:
            self._leave(subscriber, started)
        return Attempt(response.status_code)

    def _checked_client(self, policy: CallbackPolicy) -> httpx.Client:
        with self._checked_lock:
            client = self._checked.get(policy)
            if client is None:
                transport = _CheckedTransport(policy, self._resolver, limits=self._limits)
                client = self._checked[policy] = self._client(transport=transport)
            return client

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
        for client in self._checked.values():
            client.close()


class _CheckedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses the policy allows: resolve, check, connect to them."""

    def __init__(self, policy: CallbackPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolve = resolver
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host)
        if not addresses:
            raise httpcore.ConnectError(f"callback host {host!r} does not resolve to any address")
        check_addresses(host, addresses, self._policy)  # RefusedCallback: nothing is sent
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise RefusedCallback("callbacks are http(s) URLs, not unix sockets")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _CheckedTransport(httpx.HTTPTransport):
    """httpx's transport over a pool whose connections `_CheckedBackend` opens. No proxy from the
    environment: the address checked must be the address connected to."""

    def __init__(self, policy: CallbackPolicy, resolver: Resolver, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx (0.28) takes no network backend; its transport sends through `_pool`.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(policy, resolver),
        )
