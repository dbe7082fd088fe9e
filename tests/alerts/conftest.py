"""Fixtures for the alert tests: an injected clock, real stores on tmp_path, a real SMTP server
(aiosmtpd, STARTTLS with a throw-away certificate, AUTH) and real HTTP webhook servers on
port 0 whose answers the test scripts (fail N times, hang, succeed)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from telmon.model import Entry, Unit
from telmon.store.base import FileRecord, StationInfo
from telmon.store.sqlite import SQLiteStore
from tests.support import TIMEOUT, wait_for

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


class Clock:
    """An injected clock the test moves by hand (never a patched time module)."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def record(store: SQLiteStore, station: str, received_at: float, *, feed: str = "rsync",
           observed: float | None = None, name: str | None = None) -> None:
    """Commit one arrival of ``station`` received at ``received_at`` (a FileRecord through the
    store's real write path, hooks included)."""
    t = received_at if observed is None else observed
    path = name or f"/in/{station}/{received_at:.3f}.edl"
    rec = FileRecord(path, feed, 10, int(received_at * 1e9), f"{station}{received_at}", received_at, "edl",
                     [Unit(station, [Entry(t, {"stage": 1.0})])])
    store.record_files([rec], now=received_at)


def register(store: SQLiteStore, codes: list[str], now: float, **kw: Any) -> None:
    store.upsert_stations([StationInfo(code=c, **kw) for c in codes], now=now)


# --- SMTP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 (openssl), valid two days."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate for STARTTLS")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _PortZeroController(Controller):
    """aiosmtpd's Controller cannot take port 0: learn the bound port before it self-tests."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    cert: str = ""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        self.tls.append(session.ssl is not None)
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"

    def wait(self, n: int) -> list[Message]:
        wait_for(lambda: len(self.messages) >= n, what=f"{n} e-mail(s)")
        return self.messages

    def settings(self) -> dict[str, Any]:
        return {"alert_smtp_host": self.host, "alert_smtp_port": self.port, "alert_smtp_tls": "starttls",
                "alert_smtp_user": "telmon", "alert_smtp_password": "s3cret", "alert_smtp_ca_file": self.cert,
                "alert_mail_from": "telmon@example.org", "alert_mail_to": ["ops@example.org"]}


@pytest.fixture
def smtp(tls_files: tuple[Path, Path]) -> Iterator[Mailbox]:
    """A real SMTP server on localhost requiring STARTTLS and AUTH (user telmon, s3cret)."""
    cert, key = tls_files
    box = Mailbox(cert=str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        box.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"telmon", b"s3cret"), handled=False)

    ctl = _PortZeroController(box, hostname="127.0.0.1", port=0, tls_context=context, require_starttls=True,
                              authenticator=authenticate, auth_require_tls=True, ready_timeout=TIMEOUT)
    ctl.start()
    box.port = ctl.port
    yield box
    ctl.stop()


# --- webhooks -------------------------------------------------------------------------------------


class Hook:
    """A real HTTP server on port 0.  ``fail`` first requests get 500, ``hang`` requests are
    held until the test ends; every request body is kept."""

    def __init__(self, *, fail: int = 0, hang: bool = False) -> None:
        self.fail = fail
        self.hang = hang
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.headers: list[dict[str, str]] = []
        self._release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.attempts += 1
                hook.headers.append(dict(self.headers))
                if hook.hang:
                    hook._release.wait(TIMEOUT)
                    return
                if hook.attempts <= hook.fail:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"temporarily broken")
                    return
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="test-webhook", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def hooks() -> Iterator[Any]:
    made: list[Hook] = []

    def make(**kw: Any) -> Hook:
        made.append(Hook(**kw))
        return made[-1]

    yield make
    for h in made:
        h.close()
