"""Real receivers for the notifier tests: aiosmtpd SMTP servers (plain, STARTTLS with
AUTH, implicit TLS) and a threaded HTTP(S) webhook receiver that checks signatures, all
on free ports of 127.0.0.1, with a throwaway CA made here for the TLS ones.

(A module of its own, not conftest.py, so test modules can import it by name.)"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from usertide.notify import Notification
from usertide.notify.webhook import verify_signature

SMTP_USER = "relay-user"
SMTP_PASSWORD = "relay-password"
WEBHOOK_SECRET = "whsec_test_secret"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- certificates -----------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate: what a client trusts
    cert: Path  # the server's certificate (localhost, 127.0.0.1), signed by the CA
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls(folder: Path) -> TlsFiles:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("usertide test CA"))
        .issuer_name(_name("usertide test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# -- SMTP -----------------------------------------------------------------------------
SmtpMode = Literal["plain", "starttls", "ssl"]


class MailSink:
    """The aiosmtpd handler: keeps every accepted message. ``data_replies`` scripts the
    answers to DATA (then "250 OK"); ``refuse`` maps recipients to a RCPT reply."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.data_replies: deque[str] = deque()
        self.refuse: dict[str, str] = {}
        self.logins: list[str] = []
        self._lock = threading.Lock()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self.data_replies:
                return self.data_replies.popleft()
            content = cast(bytes, envelope.content)
            parsed = message_from_bytes(content, policy=policy.default)
            self.messages.append(parsed)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == SMTP_USER.encode()
            and data.password == SMTP_PASSWORD.encode()
        )
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535

    def with_id(self, message_id: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["Message-ID"] == message_id]


class _Controller(Controller):
    """aiosmtpd's controller, whose ``stop`` first drops open connections the way a
    relay going down would: aiosmtpd's own leaves their transports unclosed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        session: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self.sessions.append(session)
        return session

    def stop(self, no_assert: bool = False) -> None:
        dropped = threading.Event()

        def drop() -> None:
            if self.server is not None:
                self.server.close()
            for session in self.sessions:
                if session.transport is not None:
                    session.transport.close()
            self.loop.call_soon(dropped.set)  # after the close callbacks just queued

        self.loop.call_soon_threadsafe(drop)
        dropped.wait(5)
        super().stop(no_assert)


@dataclass
class SmtpServer:
    """aiosmtpd on a fixed port, which can be stopped and started again."""

    mode: SmtpMode
    tls: TlsFiles
    sink: MailSink = field(default_factory=MailSink)
    port: int = field(default_factory=free_port)
    _controller: _Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        kwargs: dict[str, Any] = {}
        if self.mode == "starttls":
            kwargs = {
                "tls_context": self.tls.server_context(),
                "require_starttls": True,
                "authenticator": self.sink.authenticate,
                "auth_required": True,
                "auth_exclude_mechanism": ["LOGIN"],  # PLAIN here, LOGIN with implicit TLS
            }
        elif self.mode == "ssl":
            # Implicit TLS: aiosmtpd only counts STARTTLS as TLS for AUTH, so lift that.
            kwargs = {
                "ssl_context": self.tls.server_context(),
                "authenticator": self.sink.authenticate,
                "auth_require_tls": False,
                "auth_exclude_mechanism": ["PLAIN"],
            }
        self._controller = _Controller(
            self.sink, hostname="127.0.0.1", port=self.port, server_hostname="relay.test", **kwargs
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None


# -- webhooks -------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


class WebhookReceiver(ThreadingHTTPServer):
    """Answers each POST with the next status of ``statuses`` (then 200), after
    ``delay`` seconds; records what it got and whether the signature verified."""

    daemon_threads = True

    def __init__(self, *, tls: TlsFiles | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.received: list[Received] = []
        self.statuses: deque[int] = deque()
        self.extra_headers: dict[str, str] = {}
        self.delay = 0.0
        self.scheme = "http"
        self._closed = False
        if tls is not None:
            self.socket = tls.server_context().wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/hooks/usertide", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) is expected here

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.shutdown()
        self.server_close()
        self._thread.join()


class _WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookReceiver
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        ok = verify_signature(WEBHOOK_SECRET, headers.get("x-usertide-signature", ""), body)
        self.server.received.append(Received(self.path, headers, body, ok))
        status = self.server.statuses.popleft() if self.server.statuses else 200
        if self.server.delay:
            time.sleep(self.server.delay)
        self.send_response(status)
        for name, value in self.server.extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- notifications -----------------------------------------------------------------
def make_note(**overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": "n1",
        "channel": "email",
        "recipient": "jane@example.com",
        "kind": "user_signin",
        "subject": "New sign-in to your account",
        "text": "We noticed a new sign-in.",
        "html": "<p>We noticed a <b>new sign-in</b>.</p>",
        "payload": {"alert_id": "a1", "user_id": "jane", "score": 0.93},
        "created_at": T0,
    }
    fields.update(overrides)
    return Notification(**fields)


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
