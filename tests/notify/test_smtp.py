"""SMTP delivery against real aiosmtpd servers: message shape, header safety, TLS, and
which failures are worth retrying."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from notify_support import SMTP_PASSWORD, SMTP_USER, T0, SmtpServer, TlsFiles, make_note

from usertide.notify import DeliveryError, SmtpConfig, SmtpNotifier
from usertide.notify.smtp import SmtpSecurity, clean_subject, message_id, parse_mailbox

FROM = "Usertide <alerts@usertide.test>"


def notifier_for(
    server: SmtpServer,
    security: SmtpSecurity = "none",
    *,
    login: bool = False,
    password: str = SMTP_PASSWORD,
    ca_file: str | None = None,
    verify: bool = True,
    timeout: float = 5,
) -> SmtpNotifier:
    return SmtpNotifier(
        SmtpConfig(
            "127.0.0.1",
            server.port,
            security,
            SMTP_USER if login else None,
            password if login else None,
            FROM,
            timeout=timeout,
            verify=verify,
            ca_file=ca_file,
            local_hostname="usertide.test",
        )
    )


def only_message(server: SmtpServer) -> EmailMessage:
    assert len(server.sink.messages) == 1
    return server.sink.messages[0]


# -- the message ----------------------------------------------------------------------
def test_message_has_text_and_html_alternatives_and_the_headers(smtp_server: SmtpServer) -> None:
    notifier_for(smtp_server).deliver(make_note(id="alert-42.user-7"))
    message = only_message(smtp_server)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and text.get_content().strip() == "We noticed a new sign-in."
    assert html is not None and "<b>new sign-in</b>" in html.get_content()
    assert message["Message-ID"] == "<alert-42.user-7@usertide>"
    assert message["Subject"] == "New sign-in to your account"
    assert message["From"] == FROM
    assert message["To"] == "jane@example.com"
    assert message["Date"] == "Sat, 01 Mar 2025 12:00:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"
    assert smtp_server.sink.envelopes == [("alerts@usertide.test", ["jane@example.com"])]


def test_text_only_when_there_is_no_html(smtp_server: SmtpServer) -> None:
    notifier_for(smtp_server).deliver(make_note(html=""))
    assert only_message(smtp_server).get_content_type() == "text/plain"


def test_non_ascii_subject_and_body(smtp_server: SmtpServer) -> None:
    notifier_for(smtp_server).deliver(make_note(subject="Nouvelle connexion à Zürich ✓"))
    message = only_message(smtp_server)
    assert message["Subject"] == "Nouvelle connexion à Zürich ✓"


def test_message_id_keeps_safe_ids_and_hashes_the_rest() -> None:
    assert message_id("n-1.2_x") == "<n-1.2_x@usertide>"
    odd = message_id("alert:1 <jane@example.com>")
    assert odd == message_id("alert:1 <jane@example.com>")
    assert odd.startswith("<") and odd.endswith("@usertide>") and " " not in odd
    assert odd.count("@") == 1


# -- header injection -----------------------------------------------------------------
def test_subject_cannot_add_headers(smtp_server: SmtpServer) -> None:
    subject = "Sign-in alert\r\nBcc: eve@example.com\n\nbody?"
    notifier_for(smtp_server).deliver(make_note(subject=subject))
    message = only_message(smtp_server)
    assert message["Bcc"] is None
    assert message["Subject"] == "Sign-in alert Bcc: eve@example.com body?"
    assert smtp_server.sink.envelopes[0][1] == ["jane@example.com"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\rb\nc\r\nd", "a b c d"),
        ("tab\there", "tab here"),
        ("nul\x00del\x7fc1\x85end", "nul del c1 end"),
        ("line\u2028para\u2029end", "line para end"),
        ("invoice\u202egnp.exe", "invoice gnp.exe"),
        ("  spaced   out  ", "spaced out"),
        ("émoji 👩\u200d💻", "émoji 👩\u200d💻"),
    ],
)
def test_clean_subject(raw: str, clean: str) -> None:
    assert clean_subject(raw) == clean


@pytest.mark.parametrize(
    "recipient",
    [
        "",
        "not-an-address",
        "jane@",
        "@example.com",
        "jane@example.com, eve@example.com",
        "jane@example.com;eve@example.com",
        "jane@example.com\r\nBcc: eve@example.com",
        "jane@example.com\nBcc: eve@example.com",
        "jane@example.com\x00",
        "friends: jane@example.com, eve@example.com;",
        "jane doe@example.com",
    ],
)
def test_recipient_must_be_one_valid_address(smtp_server: SmtpServer, recipient: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        notifier_for(smtp_server).deliver(make_note(recipient=recipient))
    assert not caught.value.retryable
    assert smtp_server.sink.messages == []


def test_recipient_with_display_name(smtp_server: SmtpServer) -> None:
    notifier_for(smtp_server).deliver(make_note(recipient="Jane Doe <jane@example.com>"))
    assert smtp_server.sink.envelopes[0][1] == ["jane@example.com"]
    assert only_message(smtp_server)["To"] == "Jane Doe <jane@example.com>"


def test_parse_mailbox() -> None:
    assert parse_mailbox("Jane <jane@example.com>") == "jane@example.com"
    assert parse_mailbox("ops@localhost") == "ops@localhost"
    with pytest.raises(ValueError):
        parse_mailbox("a@b.com\r\n")


# -- replies: transient or permanent --------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        ("550 5.1.1 mailbox unavailable", False),
        ("553 5.1.3 bad address syntax", False),
        ("450 4.2.1 mailbox busy", True),
        ("451 4.3.0 try again later", True),
    ],
)
def test_recipient_reply(smtp_server: SmtpServer, reply: str, retryable: bool) -> None:
    smtp_server.sink.refuse["jane@example.com"] = reply
    with pytest.raises(DeliveryError) as caught:
        notifier_for(smtp_server).deliver(make_note())
    assert caught.value.retryable is retryable
    assert reply.split()[0] in caught.value.message


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("552 5.3.4 message too big", False), ("451 4.3.0 queue full", True)],
)
def test_data_reply(smtp_server: SmtpServer, reply: str, retryable: bool) -> None:
    smtp_server.sink.data_replies.append(reply)
    notifier = notifier_for(smtp_server)
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(make_note())
    assert caught.value.retryable is retryable
    notifier.deliver(make_note())  # the next try goes through
    assert len(smtp_server.sink.messages) == 1


def test_relay_down_is_retryable(smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    with pytest.raises(DeliveryError) as caught:
        notifier_for(smtp_server).deliver(make_note())
    assert caught.value.retryable


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says anything."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield int(listener.getsockname()[1])


def test_silent_relay_times_out_retryably(silent_port: int, tls: TlsFiles) -> None:
    server = SmtpServer("plain", tls, port=silent_port)  # never started: only the port
    with pytest.raises(DeliveryError) as caught:
        notifier_for(server, timeout=0.3).deliver(make_note())
    assert caught.value.retryable


# -- TLS ----------------------------------------------------------------------------------
def test_starttls_with_login(starttls_server: SmtpServer, tls: TlsFiles) -> None:
    notifier = notifier_for(starttls_server, "starttls", login=True, ca_file=str(tls.ca))
    notifier.deliver(make_note())
    assert len(starttls_server.sink.messages) == 1
    assert starttls_server.sink.logins == [SMTP_USER]


def test_starttls_verifies_the_certificate_by_default(starttls_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        notifier_for(starttls_server, "starttls", login=True).deliver(make_note())
    assert caught.value.retryable  # a relay's certificate is fixed by its operator
    assert "certificate" in caught.value.message.lower()
    assert starttls_server.sink.messages == []


def test_verify_false_accepts_a_self_signed_relay(starttls_server: SmtpServer) -> None:
    notifier_for(starttls_server, "starttls", login=True, verify=False).deliver(make_note())
    assert len(starttls_server.sink.messages) == 1


def test_starttls_never_falls_back_to_plain_text(smtp_server: SmtpServer, tls: TlsFiles) -> None:
    with pytest.raises(DeliveryError) as caught:
        notifier_for(smtp_server, "starttls", ca_file=str(tls.ca)).deliver(make_note())
    assert caught.value.retryable
    assert smtp_server.sink.messages == []


def test_wrong_password_is_retryable_and_not_echoed(
    starttls_server: SmtpServer, tls: TlsFiles
) -> None:
    notifier = notifier_for(
        starttls_server, "starttls", login=True, password="nope-secret", ca_file=str(tls.ca)
    )
    with pytest.raises(DeliveryError) as caught:
        notifier.deliver(make_note())
    assert caught.value.retryable
    assert "535" in caught.value.message
    assert "nope-secret" not in str(caught.value)
    assert starttls_server.sink.messages == []


def test_implicit_tls(ssl_server: SmtpServer, tls: TlsFiles) -> None:
    notifier_for(ssl_server, "ssl", login=True, ca_file=str(tls.ca)).deliver(make_note())
    assert len(ssl_server.sink.messages) == 1


def test_implicit_tls_verifies_by_default(ssl_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        notifier_for(ssl_server, "ssl").deliver(make_note())
    assert caught.value.retryable
    assert ssl_server.sink.messages == []


# -- configuration --------------------------------------------------------------------
def test_config_refuses_credentials_without_tls() -> None:
    with pytest.raises(ValueError, match="without TLS"):
        SmtpConfig("relay", 25, "none", "user", "pw", "a@b.com")


def test_config_checks_its_fields() -> None:
    with pytest.raises(ValueError):
        SmtpConfig("relay", 587, "starttls", "user", None, "a@b.com")
    with pytest.raises(ValueError):
        SmtpConfig("relay", 587, "tls", None, None, "a@b.com")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SmtpConfig("relay", 587, "starttls", None, None, "a@b.com, c@d.com")


def test_config_repr_hides_the_password() -> None:
    config = SmtpConfig("relay", 587, "starttls", "user", "hunter2-secret", "a@b.com")
    assert "hunter2-secret" not in repr(config)


def test_date_of_a_naive_timestamp_is_utc(smtp_server: SmtpServer) -> None:
    notifier_for(smtp_server).deliver(make_note(created_at=T0.replace(tzinfo=None)))
    assert only_message(smtp_server)["Date"] == "Sat, 01 Mar 2025 12:00:00 +0000"
