"""The TMF652/TMF638 clients over real HTTP on loopback: against the simulator, and against a raw
HTTP server whose every answer (and every misbehaviour) the test scripts."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from provtrack.adapters.tmf638 import ServiceInventoryClient
from provtrack.adapters.tmf652 import (
    DownstreamRefused,
    DownstreamUnavailable,
    OutcomeUnknown,
    ResourceOrderingClient,
)
from provtrack.simulator.resource_ordering import Behaviour, ResourceOrderingSimulator
from provtrack.simulator.serving import serving_in_thread

TMF652 = "tmf-api/resourceOrderingManagement/v4"
ORDER: dict[str, Any] = {
    "externalId": "ACT-1",
    "orderItem": [{"id": "1", "action": "add", "resource": {"name": "port"}}],
}
WAIT = 10  # seconds a test waits for the server's threads to see something before it fails


@dataclass
class Reply:
    """What the scripted server does with one request."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    version: str = "HTTP/1.1"
    headers: dict[str, str] = field(default_factory=dict)
    close_after: bool = False  # close the connection after answering, without saying so
    hang_up: bool = False  # close the connection instead of answering
    never_answer: bool = False


def json_reply(status: int, document: Any, **options: Any) -> Reply:
    return Reply(status, orjson.dumps(document), **options)


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int  # 1 for the first connection the server accepted, and so on


class ScriptedServer:
    """A raw HTTP/1.1 server on loopback: each request gets `answer(request)`; it records what
    arrived and which connections the client closed, so tests wait on events, never on time."""

    def __init__(self, answer: Callable[[Received], Reply], tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.received: list[Received] = []
        self.accepted = 0
        self.closed_by_client: set[int] = set()
        self.closed_by_server: set[int] = set()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._start(self._accept)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/inventory/{TMF652}"

    def wait_until(self, condition: Callable[[], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(condition, timeout=WAIT), "the server did not see it"

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            sockets = [self._listener, *self._sockets]
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked in accept() and recv()
        for thread in self._threads:
            thread.join(timeout=WAIT)
        self._listener.close()

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._changed:
                self.accepted += 1
                self._sockets.append(sock)
                self._start(self._serve, sock, self.accepted)

    def _serve(self, sock: socket.socket, number: int) -> None:
        with sock:
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except ssl.SSLError:
                    return  # the client did not trust the certificate
            with sock, sock.makefile("rb") as reader:
                closed_by = self._converse(sock, reader, number)
        with self._changed:
            closed_by.add(number)
            self._changed.notify_all()

    def _converse(self, sock: socket.socket, reader: Any, number: int) -> set[int]:
        """Answer requests until one side ends the connection; returns who did (as the set to note it in)."""
        while (request := _read_request(reader, number)) is not None:
            reply = self.answer(request)
            with self._changed:
                self.received.append(request)
                self._changed.notify_all()
            if reply.never_answer:
                self._stopping.wait()
            if reply.never_answer or reply.hang_up:
                return self.closed_by_server
            sock.sendall(_encode(reply))
            if reply.close_after:
                return self.closed_by_server
        return self.closed_by_client


def _read_request(reader: Any, connection: int) -> Received | None:
    try:
        line = reader.readline()
    except OSError:
        return None
    if not line:
        return None
    method, target, _ = line.decode().split(" ", 2)
    headers = {}
    while (header := reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", 0)))
    return Received(method, target, headers, body, connection)


def _encode(reply: Reply) -> bytes:
    headers = {"Content-Type": reply.content_type, "Content-Length": str(len(reply.body)), **reply.headers}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{reply.version} {reply.status} Whatever\r\n{head}\r\n".encode() + reply.body


Serve = Callable[..., ScriptedServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[ScriptedServer] = []

    def start(answer: Callable[[Received], Reply], tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(answer, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client() -> Iterator[ResourceOrderingClient]:
    client = ResourceOrderingClient(timeout=5, connect_timeout=5)
    yield client
    client.close()


def replies(*script: Reply) -> Callable[[Received], Reply]:
    """Answer with the script in order, then with its last reply for ever."""
    remaining = list(script)
    return lambda _request: remaining.pop(0) if len(remaining) > 1 else remaining[0]


def created(request: Received) -> Reply:
    return json_reply(201, {"id": f"RO-{request.connection}", **orjson.loads(request.body or b"{}")})


# --- against the simulator ------------------------------------------------------------------------


def test_an_order_is_created_read_and_subscribed_to_on_the_simulator(client: ResourceOrderingClient) -> None:
    simulator = ResourceOrderingSimulator(Behaviour(delay=0.0, seed=7))
    with serving_in_thread(simulator.app()) as url:
        base = f"{url}/inventory/{TMF652}"
        order = client.create(base, ORDER)
        again = client.create(base, ORDER)
        read = client.get(base, order["id"])
        hub = client.subscribe(base, "http://127.0.0.1:9/listener")
        client.close()
    assert again["id"] == read["id"] == order["id"]
    assert simulator.repeated_posts == 1
    assert hub["callback"] == "http://127.0.0.1:9/listener"


def test_the_service_inventory_client_creates_and_updates_a_service_on_the_simulator() -> None:
    inventory = ServiceInventoryClient(timeout=5)
    with serving_in_thread(ResourceOrderingSimulator().app()) as url:
        base = f"{url}/inventory/tmf-api/serviceInventory/v4"
        service = inventory.create_service(base, {"name": "fibre", "state": "active"})
        updated = inventory.update_service(base, service["id"], {"state": "terminated"})
        inventory.close()
    assert updated["id"] == service["id"]
    assert updated["state"] == "terminated"


# --- what is sent ---------------------------------------------------------------------------------


def test_requests_ask_for_json_and_send_json_bodies(serve: Serve, client: ResourceOrderingClient) -> None:
    server = serve(created)
    client.create(server.url, ORDER)
    client.get(server.url, "RO-1")
    post, get = server.received
    assert (post.method, post.target) == ("POST", f"/inventory/{TMF652}/resourceOrder")
    assert post.headers["accept"] == "application/json"
    assert post.headers["content-type"] == "application/json"
    assert orjson.loads(post.body) == ORDER
    assert (get.method, get.target, get.body) == ("GET", f"/inventory/{TMF652}/resourceOrder/RO-1", b"")
    assert get.headers["accept"] == "application/json"
    assert "content-type" not in get.headers
    assert get.headers["host"] == f"127.0.0.1:{server.port}"


def test_query_strings_and_percent_encoded_paths_are_sent_as_given(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(replies(Reply()))
    client.get(server.url, "RO%2F7")
    client._call("GET", f"{server.url}/resourceOrder?state=completed&fields=id%2Cstate")
    assert [request.target for request in server.received] == [
        f"/inventory/{TMF652}/resourceOrder/RO%2F7",
        f"/inventory/{TMF652}/resourceOrder?state=completed&fields=id%2Cstate",
    ]


def test_https_urls_are_verified_against_the_trusted_certificates(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate, key)
    server = serve(created, tls)

    untrusting = ResourceOrderingClient(timeout=5)
    with pytest.raises(DownstreamUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.create(server.url, ORDER)
    untrusting.close()

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # read when the client makes its TLS context
    trusting = ResourceOrderingClient(timeout=5)
    assert trusting.create(server.url, ORDER)["id"] == "RO-2"
    assert trusting.get(server.url, "RO-2")["id"] == "RO-2"
    trusting.close()
    assert server.accepted == 2


# --- answers ----------------------------------------------------------------------------------------


def test_a_5xx_answer_is_unavailable_and_the_next_attempt_succeeds(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(replies(Reply(500, b"simulated outage", "text/plain"), json_reply(201, {"id": "RO-1"})))
    with pytest.raises(DownstreamUnavailable) as failure:
        client.create(server.url, ORDER)
    assert str(failure.value) == f"POST {server.url}/resourceOrder: HTTP 500: simulated outage"
    assert client.create(server.url, ORDER) == {"id": "RO-1"}


def test_a_4xx_answer_is_refused_with_its_json_body(serve: Serve, client: ResourceOrderingClient) -> None:
    error = {"code": "60", "reason": "Not found", "message": "no resource order RO-9"}
    server = serve(replies(json_reply(404, error)))
    with pytest.raises(DownstreamRefused) as refusal:
        client.get(server.url, "RO-9")
    assert (refusal.value.status, refusal.value.body) == (404, error)
    assert str(refusal.value) == f"GET {server.url}/resourceOrder/RO-9: HTTP 404"


def test_a_4xx_answer_that_is_not_json_keeps_4000_characters_of_its_text(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(replies(Reply(400, "é".encode() * 5000, "text/plain; charset=utf-8")))
    with pytest.raises(DownstreamRefused) as refusal:
        client.create(server.url, ORDER)
    assert refusal.value.body == "é" * 4000


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b"[1, 2]"])
def test_a_2xx_answer_that_is_not_a_json_object_is_unavailable(
    serve: Serve, client: ResourceOrderingClient, body: bytes
) -> None:
    server = serve(replies(Reply(200, body)))
    with pytest.raises(DownstreamUnavailable, match="the answer is not a JSON object"):
        client.get(server.url, "RO-1")


def test_an_empty_2xx_answer_is_an_empty_object(serve: Serve, client: ResourceOrderingClient) -> None:
    server = serve(replies(Reply(201, b"")))
    assert client.subscribe(server.url, "http://127.0.0.1:9/listener") == {}


# --- connections ----------------------------------------------------------------------------------


def test_calls_from_one_thread_share_one_kept_alive_connection(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(created)
    ids = [client.create(server.url, ORDER)["id"] for _ in range(5)]
    assert ids == ["RO-1"] * 5
    assert server.accepted == 1


def test_a_read_on_a_kept_alive_connection_the_server_closed_is_retried_once_on_a_new_one(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(lambda request: json_reply(200, {"id": f"RO-{request.connection}"}, close_after=True))
    assert client.get(server.url, "RO-1")["id"] == "RO-1"
    server.wait_until(lambda: server.closed_by_server == {1})
    assert client.get(server.url, "RO-1")["id"] == "RO-2"
    assert client.get(server.url, "RO-1")["id"] == "RO-3"
    assert [request.connection for request in server.received] == [1, 2, 3]


def test_a_post_on_a_kept_alive_connection_the_server_closed_is_not_repeated_blindly(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(lambda request: json_reply(201, {"id": f"RO-{request.connection}"}, close_after=True))
    assert client.create(server.url, ORDER)["id"] == "RO-1"
    server.wait_until(lambda: server.closed_by_server == {1})
    with pytest.raises(OutcomeUnknown) as unknown:
        client.create(server.url, ORDER)
    assert unknown.value.stale
    assert len(server.received) == 1  # not sent again on a new connection: the engine looks it up first


def test_a_new_connection_the_server_hangs_up_on_is_not_retried(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(replies(Reply(hang_up=True)))
    with pytest.raises(DownstreamUnavailable, match=r"^POST .*/resourceOrder: RemoteDisconnected: "):
        client.create(server.url, ORDER)
    assert server.accepted == 1


def test_a_stale_connection_is_retried_only_once(serve: Serve, client: ResourceOrderingClient) -> None:
    server = serve(replies(json_reply(200, {"id": "RO-1"}, close_after=True), Reply(hang_up=True)))
    client.get(server.url, "RO-1")
    server.wait_until(lambda: server.closed_by_server == {1})
    with pytest.raises(DownstreamUnavailable, match="RemoteDisconnected"):
        client.get(server.url, "RO-1")
    assert server.accepted == 2


def test_a_connection_close_answer_makes_the_next_call_connect_again(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(lambda request: json_reply(201, {"id": "RO-1"}, headers={"Connection": "close"}))
    client.create(server.url, ORDER)
    client.create(server.url, ORDER)
    assert [request.connection for request in server.received] == [1, 2]


def test_an_http_1_0_answer_makes_the_next_call_connect_again(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    keep_alive = {"Connection": "keep-alive"}  # http.client would keep this connection open
    server = serve(lambda request: json_reply(201, {"id": "RO-1"}, version="HTTP/1.0", headers=keep_alive))
    client.create(server.url, ORDER)
    server.wait_until(lambda: server.closed_by_client == {1})
    client.create(server.url, ORDER)
    assert [request.connection for request in server.received] == [1, 2]


def test_a_system_that_never_answers_is_unavailable_after_the_read_timeout(serve: Serve) -> None:
    server = serve(replies(Reply(never_answer=True), json_reply(201, {"id": "RO-1"})))
    impatient = ResourceOrderingClient(timeout=0.2, connect_timeout=60)
    started = time.monotonic()
    with pytest.raises(DownstreamUnavailable, match=r"^POST .*/resourceOrder: TimeoutError: timed out$"):
        impatient.create(server.url, ORDER)
    assert time.monotonic() - started < 5  # the read timeout, not the connect timeout
    assert impatient.create(server.url, ORDER) == {"id": "RO-1"}
    assert server.accepted == 2  # the connection that timed out was not reused
    impatient.close()


def test_a_system_that_does_not_accept_connections_is_unavailable_after_the_connect_timeout() -> None:
    # A listener that never accepts, its queue full: Linux drops the next SYN, so connect() hangs.
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        queued = [socket.socket() for _ in range(3)]
        for sock in queued:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        impatient = ResourceOrderingClient(timeout=60, connect_timeout=0.2)
        started = time.monotonic()
        with pytest.raises(DownstreamUnavailable, match="TimeoutError"):
            impatient.get(f"http://127.0.0.1:{port}/{TMF652}", "RO-1")
        assert time.monotonic() - started < 5  # the connect timeout, not the read timeout
        impatient.close()
        for sock in queued:
            sock.close()


def test_a_closed_port_is_unavailable(client: ResourceOrderingClient) -> None:
    with socket.socket() as bound_not_listening:  # holds the port so nothing else takes it
        bound_not_listening.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound_not_listening.getsockname()[1]}/{TMF652}"
        with pytest.raises(DownstreamUnavailable) as failure:
            client.create(url, ORDER)
    assert str(failure.value) == (
        f"POST {url}/resourceOrder: ConnectionRefusedError: [Errno 111] Connection refused"
    )


def test_a_url_that_is_not_http_is_unavailable(client: ResourceOrderingClient) -> None:
    with pytest.raises(DownstreamUnavailable, match=r"^GET ftp://host/x/resourceOrder/1: InvalidURL"):
        client.get("ftp://host/x", "1")


# --- threads and closing --------------------------------------------------------------------------


def test_each_thread_uses_its_own_connection(serve: Serve, client: ResourceOrderingClient) -> None:
    server = serve(lambda request: json_reply(201, {"id": f"RO-{request.connection}"}))
    threads, calls = 8, 25
    all_started = threading.Barrier(threads)
    seen: dict[int, set[str]] = {}

    def work(number: int) -> None:
        all_started.wait(timeout=WAIT)
        seen[number] = {client.create(server.url, ORDER)["id"] for _ in range(calls)}

    workers = [threading.Thread(target=work, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=WAIT)
    assert all(len(ids) == 1 for ids in seen.values())  # one connection per thread, for every call
    assert len(set.union(*seen.values())) == threads  # and no connection shared between threads
    assert len(server.received) == threads * calls
    assert server.accepted == threads


def test_concurrent_orders_on_the_simulator_are_all_created(client: ResourceOrderingClient) -> None:
    simulator = ResourceOrderingSimulator(Behaviour(delay=0.0, seed=7))
    orders = [{**ORDER, "externalId": f"ACT-{number}"} for number in range(64)]
    with serving_in_thread(simulator.app()) as url:
        base = f"{url}/activation/{TMF652}"
        results: list[list[dict[str, Any]]] = [[] for _ in range(8)]

        def work(number: int) -> None:
            results[number] = [client.create(base, order) for order in orders[number::8]]

        workers = [threading.Thread(target=work, args=(number,)) for number in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=WAIT)
        client.close()
    created = sorted(result["externalId"] for part in results for result in part)
    assert created == sorted(order["externalId"] for order in orders)
    assert len(simulator.created("activation")) == 64


def test_close_closes_the_callers_connections_and_other_threads_on_their_next_call(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(lambda request: json_reply(200, {"id": f"RO-{request.connection}"}))
    go = [threading.Event(), threading.Event(), threading.Event()]  # call, call again, end
    answered: list[str] = []

    def other_thread() -> None:
        for step in go[:2]:
            step.wait(timeout=WAIT)
            answered.append(client.get(server.url, "RO")["id"])
        go[2].wait(timeout=WAIT)

    other = threading.Thread(target=other_thread)
    other.start()
    assert client.get(server.url, "RO")["id"] == "RO-1"
    go[0].set()
    server.wait_until(lambda: len(server.received) == 2)

    client.close()
    server.wait_until(lambda: server.closed_by_client == {1})
    go[1].set()
    server.wait_until(lambda: len(server.received) == 3)
    server.wait_until(lambda: server.closed_by_client == {1, 2})  # at its next call, not at its end
    go[2].set()
    other.join(timeout=WAIT)
    assert answered == ["RO-2", "RO-3"]
    assert client.get(server.url, "RO")["id"] == "RO-4"  # a closed client opens new connections


def test_the_connections_of_a_thread_that_ended_are_closed(
    serve: Serve, client: ResourceOrderingClient
) -> None:
    server = serve(created)
    worker = threading.Thread(target=client.create, args=(server.url, ORDER))
    worker.start()
    worker.join(timeout=WAIT)
    server.wait_until(lambda: server.closed_by_client == {1})
