"""The SMTP mailer against a minimal SMTP server on loopback (no network beyond 127.0.0.1)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator

import pytest

from provtrack.adapters.email import SmtpMailer


class _Session(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        received: list[str] = self.server.received  # type: ignore[attr-defined]
        self.wfile.write(b"220 test ESMTP\r\n")
        in_data = False
        while line := self.rfile.readline():
            text = line.decode().rstrip("\r\n")
            if in_data:
                if text == ".":
                    in_data = False
                    self.wfile.write(b"250 queued\r\n")
                else:
                    received.append(text)
                continue
            verb = text.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                received.append(text)
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[str]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Session)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], server.received  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_an_escalation_email_reaches_the_smtp_server(smtp_server: tuple[int, list[str]]) -> None:
    port, received = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, sender="provtrack@example.net")
    mailer.send("noc-oncall@example.net", "[provtrack] order late", "Service order so-1 is late.\n")
    assert received[0].upper().startswith("MAIL FROM:<PROVTRACK@EXAMPLE.NET>")
    assert received[1].upper().startswith("RCPT TO:<NOC-ONCALL@EXAMPLE.NET>")
    assert "Subject: [provtrack] order late" in received
    assert "Service order so-1 is late." in received


def test_an_unreachable_smtp_server_raises_so_the_job_is_retried() -> None:
    mailer = SmtpMailer("127.0.0.1", 9, sender="provtrack@example.net", timeout=2)
    with pytest.raises(ConnectionRefusedError):
        mailer.send("x@example.net", "s", "t")
