"""Keep-alive HTTP/1.1 connections on the standard library's http.client, one set per thread.

Each thread keeps one connection per (scheme, host, port) and reuses it call after call, so the hot
path of the engine's downstream calls is a send and a receive on an open socket. http.client
connections are not thread-safe; keeping them per thread makes locking unnecessary.

A request that fails on a reused connection before any answer arrives (the server closed the idle
connection meanwhile) is sent once more on a fresh connection. Callers must therefore only send
requests that are safe to repeat.

Failures are not translated: connection errors and timeouts are `OSError`s, protocol errors and
unusable URLs are `http.client.HTTPException`s. The connection they happened on is closed first.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

from provtrack.adapters import tracing

Origin = tuple[str, str, int]  # (scheme, host, port)

DEFAULT_PORTS = {"http": 80, "https": 443}

# What a reused connection the server has closed meanwhile looks like on the next request: an EOF
# instead of a status line (RemoteDisconnected), or a reset or broken pipe while sending.
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class StaleConnection(ConnectionError):
    """A kept-alive connection the server had closed failed a request not to be repeated blindly."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A complete response: the body is always read to the end, so the connection can be reused."""

    status: int
    body: bytes
    headers: http.client.HTTPMessage

    def text(self) -> str:
        """The body as text, for error messages: in the charset of its Content-Type, else UTF-8."""
        # Parsed here, not per response: it is only needed for error messages and costs ~9 µs.
        charset = self.headers.get_content_charset() or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")


def split_url(url: str) -> tuple[Origin, str]:
    """The origin to connect to and the request target (path and query, kept percent-encoded)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # e.g. a port that is not a number
        raise http.client.InvalidURL(f"{url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise http.client.InvalidURL(f"{url!r} is not an absolute http:// or https:// URL")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return (scheme, parts.hostname, port or DEFAULT_PORTS[scheme]), target


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: str  # path and query
    body: bytes | None
    headers: dict[str, str]


class _ThreadConnections:
    """One thread's open connections by origin.

    They are closed by `close_all`, or when this object is dropped (the thread ended, or the pool was
    garbage collected), so no socket is left for the garbage collector to complain about.
    """

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.by_origin: dict[Origin, http.client.HTTPConnection] = {}
        self.close_all = weakref.finalize(self, _close_each, self.by_origin)

    def drop(self, origin: Origin) -> None:
        connection = self.by_origin.pop(origin, None)
        if connection is not None:
            connection.close()

    def send(
        self, origin: Origin, connection: http.client.HTTPConnection, request: _Request
    ) -> http.client.HTTPResponse:
        try:
            connection.request(request.method, request.target, body=request.body, headers=request.headers)
            return connection.getresponse()
        except BaseException:
            self.drop(origin)  # its state is unknown: half a request may be on the wire
            raise

    def receive(self, origin: Origin, response: http.client.HTTPResponse) -> HttpAnswer:
        try:
            body = response.read()
        except BaseException:
            self.drop(origin)
            raise
        if response.will_close or response.version < 11:  # Connection: close, or HTTP/1.0
            self.drop(origin)
        return HttpAnswer(response.status, body, response.headers)


def _close_each(by_origin: dict[Origin, http.client.HTTPConnection]) -> None:
    while by_origin:
        _, connection = by_origin.popitem()
        connection.close()


class KeepAliveConnections:
    """Per-thread keep-alive connections with separate connect and read timeouts.

    `close()` closes the calling thread's connections at once; other threads close theirs on their
    next request (then open new ones) or when they end.
    """

    def __init__(self, *, timeout: float, connect_timeout: float) -> None:
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._generation = 0  # moved on by close(): connections of an older generation are closed
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def exchange(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        repeat_if_stale: bool = True,
    ) -> HttpAnswer:
        origin, target = split_url(url)
        request = _Request(method, target, body, {**headers, **tracing.outgoing()})
        connections = self._thread_connections()
        connection = connections.by_origin.get(origin)
        if connection is not None and connection.sock is not None:
            try:
                response = connections.send(origin, connection, request)
            except STALE_CONNECTION_ERRORS:
                # The server closed the idle connection, most likely before reading this request:
                # nothing was answered. A request safe to repeat is tried once on a new connection;
                # the others fail, for the caller to find out what happened.
                if not repeat_if_stale:
                    connections.drop(origin)
                    raise StaleConnection(f"{method} {url}: the server had closed the connection") from None
                response = self._send_on_new(connections, origin, request)
        else:
            response = self._send_on_new(connections, origin, request)
        return connections.receive(origin, response)

    def close(self) -> None:
        with self._lock:
            self._generation += 1
        connections = getattr(self._local, "connections", None)
        if connections is not None:
            del self._local.connections
            connections.close_all()

    def _thread_connections(self) -> _ThreadConnections:
        connections: _ThreadConnections | None = getattr(self._local, "connections", None)
        if connections is None or connections.generation != self._generation:
            if connections is not None:
                connections.close_all()
            connections = self._local.connections = _ThreadConnections(self._generation)
        return connections

    def _send_on_new(
        self, connections: _ThreadConnections, origin: Origin, request: _Request
    ) -> http.client.HTTPResponse:
        connections.drop(origin)
        connection = self._connect(origin)
        connections.by_origin[origin] = connection
        return connections.send(origin, connection, request)

    def _connect(self, origin: Origin) -> http.client.HTTPConnection:
        """Open a connection within `connect_timeout`, then give the exchanges `timeout`."""
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self._connect_timeout, context=self._tls_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
        try:
            connection.connect()
            connection.sock.settimeout(self._timeout)
        except BaseException:
            connection.close()
            raise
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        # Made on first use: loading the trusted certificates takes milliseconds, and most systems
        # are plain HTTP inside the operator's network.
        with self._lock:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return self._tls
