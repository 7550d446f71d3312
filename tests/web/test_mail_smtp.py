"""The SMTP path of web/mail.py: queued off the request thread, STARTTLS with a verified
certificate, AUTH, retries on transient failures only, one log line without the message.

A real aiosmtpd server on 127.0.0.1 with a certificate made here (a CA and a leaf for
127.0.0.1); the client trusts it through ``SMTP_CA_FILE``. Every wait is bounded.
"""

from __future__ import annotations

import datetime
import email
import gc
import ipaddress
import logging
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.helpers import wait_for
from web import mail, smtp_sender

pytestmark = [
    pytest.mark.backend_independent,
    # aiosmtpd (1.4.6) leaves its side of a STARTTLS connection for the garbage collector;
    # the sockets named in these warnings are the server's (local port = the test server's).
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*(_SelectorTransport|socket.socket)"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]
WAIT = 20.0
USER, SECRET = "mailer", "s3cret-password"
BODY_SECRET = "token-ABCDEF-should-never-be-logged"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        alt = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(alt, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA file for the client, and the server's certificate and key."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _cert("Test CA", ca_key, "Test CA", ca_key, ca=True)
    leaf = _cert("127.0.0.1", leaf_key, "Test CA", ca_key, ca=False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class Inbox:
    """Handler that records messages and can answer 4xx a set number of times first."""

    def __init__(self, busy_replies: int = 0) -> None:
        self.messages: list[tuple[email.message.Message, bool, bool]] = []
        self.data_commands = 0
        self.busy_replies = busy_replies
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.data_commands += 1
        if self.busy_replies:
            self.busy_replies -= 1
            return "451 Try again later"
        message = email.message_from_bytes(envelope.content)
        self.messages.append((message, session.ssl is not None, bool(session.authenticated)))
        self.arrived.set()
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        SECRET.encode(),
    )
    return AuthResult(success=good, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_factory(certificates: tuple[Path, Path, Path]) -> Iterator[Any]:
    started: list[Controller] = []

    def start(inbox: Inbox, *, tls: bool = True) -> int:
        _, cert, key = certificates
        params: dict[str, Any] = {}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            params = {
                "tls_context": context,
                "require_starttls": True,
                "auth_required": True,
                "authenticator": authenticator,
            }
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **params)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()
    gc.collect()  # the leaked server sockets warn now, under this module's filter


def config(port: int, ca: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_FROM": "team@example.com",
        "SMTP_STARTTLS": True,
        "SMTP_USERNAME": USER,
        "SMTP_PASSWORD": SECRET,
        "SMTP_CA_FILE": str(ca),
        "SMTP_MAX_ATTEMPTS": 4,
        "SMTP_RETRY_SECONDS": 0.01,
        **overrides,
    }


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "team@example.com", "x@example.com", "Invite"
    msg.set_content(f"join with {BODY_SECRET}")
    return msg


def send_and_wait(sender: smtp_sender.Sender, settings: dict[str, Any]) -> None:
    assert sender.enqueue(smtp_sender.Server.from_config(settings), message())
    assert sender.wait_idle(WAIT)


def test_mail_goes_over_starttls_with_a_login(server_factory, certificates):
    inbox = Inbox()
    port = server_factory(inbox)
    assert mail.send(
        config(port, certificates[0]), to="x@example.com", subject="Invite", body=BODY_SECRET
    )
    assert inbox.arrived.wait(WAIT)
    ((received, over_tls, logged_in),) = inbox.messages
    assert over_tls and logged_in
    assert received["Subject"] == "Invite" and received["To"] == "x@example.com"
    assert BODY_SECRET in received.get_payload(decode=True).decode()


def test_a_4xx_reply_is_retried_until_the_server_takes_the_message(server_factory, certificates):
    inbox = Inbox(busy_replies=2)
    port = server_factory(inbox)
    sender = smtp_sender.Sender()
    send_and_wait(sender, config(port, certificates[0]))
    assert (sender.attempts, sender.delivered, sender.given_up) == (3, 1, 0)
    assert inbox.data_commands == 3 and len(inbox.messages) == 1


def test_a_wrong_password_is_not_retried_and_logs_one_line_without_the_message(
    server_factory, certificates, caplog
):
    caplog.set_level(logging.DEBUG, logger="web.smtp_sender")
    inbox = Inbox()
    port = server_factory(inbox)
    sender = smtp_sender.Sender()
    send_and_wait(sender, config(port, certificates[0], SMTP_PASSWORD="wrong"))
    assert (sender.attempts, sender.given_up) == (1, 1)
    assert inbox.messages == []
    lines = [r.getMessage() for r in caplog.records if r.name == "web.smtp_sender"]
    assert lines == [
        f"could not send e-mail via 127.0.0.1:{port} after 1 attempt(s): SMTPAuthenticationError"
    ]


def test_a_server_without_starttls_gets_nothing(server_factory, certificates):
    inbox = Inbox()
    port = server_factory(inbox, tls=False)
    sender = smtp_sender.Sender()
    send_and_wait(sender, config(port, certificates[0]))
    assert (sender.attempts, sender.given_up) == (1, 1)
    assert inbox.data_commands == 0


def test_a_certificate_the_client_does_not_trust_is_refused(server_factory, certificates):
    inbox = Inbox()
    port = server_factory(inbox)
    sender = smtp_sender.Sender()
    send_and_wait(sender, config(port, certificates[0], SMTP_CA_FILE=None))
    assert (sender.attempts, sender.given_up) == (1, 1)
    assert inbox.messages == []


def test_no_server_is_retried_a_few_times_then_given_up(caplog):
    sender = smtp_sender.Sender()
    port = free_port()  # nothing listens there
    send_and_wait(sender, config(port, Path("unused"), SMTP_STARTTLS=False, SMTP_USERNAME=None))
    assert (sender.attempts, sender.given_up) == (4, 1)
    warnings = [r for r in caplog.records if r.name == "web.smtp_sender"]
    assert len(warnings) == 1 and "after 4 attempt(s)" in warnings[0].getMessage()
    assert all(BODY_SECRET not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("error", "again"),
    [
        (smtplib.SMTPServerDisconnected("gone"), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (smtplib.SMTPResponseException(421, b"busy"), True),
        (smtplib.SMTPResponseException(554, b"no"), False),
        (smtplib.SMTPAuthenticationError(535, b"bad"), False),
        (smtplib.SMTPNotSupportedError("no STARTTLS"), False),
        (ssl.SSLCertVerificationError("bad cert"), False),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"later")}), True),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"unknown")}), False),
    ],
)
def test_only_transient_errors_are_tried_again(error, again):
    assert smtp_sender.transient(error) is again


def test_a_full_queue_refuses_at_once_instead_of_waiting(monkeypatch):
    release = threading.Event()
    started = threading.Event()

    def stuck(server: Any, msg: Any) -> None:
        started.set()
        release.wait(WAIT)

    monkeypatch.setattr(smtp_sender, "QUEUE_SIZE", 2)
    sender = smtp_sender.Sender(deliver=stuck)
    server = smtp_sender.Server.from_config(config(1, Path("unused")))
    assert sender.enqueue(server, message())
    assert started.wait(WAIT)  # the thread holds one; the queue holds two more
    results = [sender.enqueue(server, message()) for _ in range(3)]
    release.set()
    assert results == [True, True, False]
    assert sender.wait_idle(WAIT)
    assert sender.delivered == 3


# --- configuration and start-up ---------------------------------------------------------------


def test_a_login_without_starttls_or_a_password_alone_stops_the_start():
    from config import ConfigError, load_config

    base = {"APP_ENV": "development", "SMTP_HOST": "mail.example.com"}
    with pytest.raises(ConfigError, match="SMTP_STARTTLS"):
        load_config({**base, "SMTP_USERNAME": "u", "SMTP_STARTTLS": "0"})
    with pytest.raises(ConfigError, match="SMTP_USERNAME"):
        load_config({**base, "SMTP_PASSWORD": "p"})
    with pytest.raises(ConfigError, match="SMTP_STARTTLS"):
        load_config({**base, "SMTP_STARTTLS": "maybe"})
    assert load_config(base)["SMTP_STARTTLS"] is True
    assert load_config({**base, "SMTP_STARTTLS": "off"})["SMTP_STARTTLS"] is False


def test_production_without_smtp_host_says_so_once_at_start(caplog):
    from flask import Flask

    caplog.set_level(logging.WARNING, logger="web.mail")
    app = Flask(__name__)
    app.config.update(APP_ENV="production", SMTP_HOST=None)
    mail.init_app(app)
    app.config.update(APP_ENV="development")
    mail.init_app(app)
    app.config.update(APP_ENV="production", SMTP_HOST="mail.example.com")
    mail.init_app(app)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "web.mail"]
    assert line.startswith("SMTP_HOST is not set")
    assert "Invites show their link" in line and "password resets cannot be mailed" in line


def test_the_invite_page_answers_while_the_mail_server_hangs(app, team, monkeypatch):
    """The request only queues: it is answered while delivery is still stuck."""
    release, stuck_on = threading.Event(), []

    def hanging_server(server: Any, msg: Any) -> None:
        stuck_on.append(msg["To"])
        release.wait(WAIT)

    sender = smtp_sender.Sender(deliver=hanging_server)
    monkeypatch.setattr(smtp_sender, "_sender", sender)
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=1, SMTP_STARTTLS=False)
    try:
        response = team.owner.web.post(
            f"/w/{team.workspace_id}/invites/new", {"email": "late@example.com", "role": "member"}
        )
        assert response.status_code == 200
        assert "is queued for sending" in team.owner.web.text(response)
        assert wait_for(lambda: stuck_on == ["late@example.com"])
        assert sender.delivered == 0  # still stuck after the page was answered
    finally:
        release.set()
    assert sender.wait_idle(WAIT) and sender.delivered == 1
