"""A webhook receiver on loopback for the events tests: records what it accepts, answers as told."""

from __future__ import annotations

import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return orjson.loads(self.body)  # type: ignore[no-any-return]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 drops bursts of connections, each then retried a second later


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """`answers` is a queue of statuses for the next requests; when it is empty the receiver answers
    `default`. Requests answered 2xx are kept in `accepted`, every answered one in `seen`."""

    def __init__(self, port: int | None = None, *, default: int = 200) -> None:
        self.port = port or free_port()
        self.default = default
        self.answers: deque[int] = deque()
        self.accepted: list[Received] = []
        self.seen: list[Received] = []
        self.requests = 0
        self.stall = 0  # the next N requests get no answer until `release` is set
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.requests += 1
                    stalled = receiver.stall > 0
                    receiver.stall -= stalled
                if stalled:
                    receiver.release.wait(30)
                    return
                with receiver._lock:
                    status = receiver.answers.popleft() if receiver.answers else receiver.default
                    received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    receiver.seen.append(received)
                    if 200 <= status < 300:
                        receiver.accepted.append(received)
                        receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for_accepted(self, count: int, timeout: float = 10) -> bool:
        """Wait until `count` requests have been accepted (False if `timeout` seconds pass first)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.accepted) >= count, timeout)

    def event_types(self) -> list[str]:
        return [r.event["eventType"] for r in self.accepted]
