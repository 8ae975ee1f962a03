"""E-mail through an SMTP relay (stdlib ``smtplib``), one connection per notification.

TLS is verified by default against the system's CA store: set ``ca_file`` to a PEM
bundle for a relay whose certificate a private CA signed, or ``verify=False`` for a
self-signed relay you trust by other means (a container on the same host); that turns
off both certificate and host name checks, so don't use it across a network.

Headers are safe by construction: the subject loses control and bidi-override
characters, the recipient must be exactly one valid mailbox, and ``Message-ID`` is
``<{id}@usertide>`` (a hash of the id if the id has characters a Message-ID can't
hold), the same on every retry so mail clients can drop a repeat.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import ClassVar, Literal, get_args

from usertide.notify.base import DeliveryError, Notifier
from usertide.notify.model import Notification

SmtpSecurity = Literal["starttls", "ssl", "none"]

_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """``security``: ``"starttls"`` (port 587; the relay must offer STARTTLS, there is
    no fallback to plain text), ``"ssl"`` (implicit TLS, port 465) or ``"none"`` (a
    relay on localhost; credentials are refused on it). ``verify``/``ca_file``: see the
    module doc. ``local_hostname`` is the EHLO name (default: this host's FQDN)."""

    host: str
    port: int
    security: SmtpSecurity
    username: str | None
    password: str | None = field(repr=False)
    from_addr: str
    timeout: float = 10.0
    verify: bool = True
    ca_file: str | None = None
    local_hostname: str | None = None

    def __post_init__(self) -> None:
        if self.security not in get_args(SmtpSecurity):
            raise ValueError(f"security must be one of {get_args(SmtpSecurity)}")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.username is not None and self.security == "none":
            raise ValueError("refusing to send SMTP credentials without TLS")
        parse_mailbox(self.from_addr)  # raises ValueError

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def parse_mailbox(value: str) -> str:
    """The address of ``value`` if it is exactly one mailbox (``jane@example.com`` or
    ``Jane <jane@example.com>``) without control characters; ``ValueError`` otherwise."""
    if not value or any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise ValueError("not a single e-mail address")
    try:
        header = policy.default.header_factory("To", value)
        groups = header.groups
    except Exception:  # the parser fails in assorted ways on malformed input
        raise ValueError("not a single e-mail address") from None
    if header.defects or len(groups) != 1 or groups[0].display_name is not None:
        raise ValueError("not a single e-mail address")
    addresses = groups[0].addresses
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError("not a single e-mail address")
    address: str = addresses[0].addr_spec
    return address


def clean_subject(subject: str) -> str:
    """``subject`` on one line: control, line-separator and bidi-override characters
    become spaces, runs of spaces collapse."""
    kept = (
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS else ch
        for ch in subject
    )
    return " ".join("".join(kept).split())


def message_id(note_id: str) -> str:
    left = note_id if _DOT_ATOM.fullmatch(note_id) else hashlib.sha256(note_id.encode()).hexdigest()
    return f"<{left}@usertide>"


def compose(note: Notification, from_addr: str) -> EmailMessage:
    """The e-mail for ``note``: text, plus an HTML alternative when there is one.
    ``note.recipient`` must have passed :func:`parse_mailbox`."""
    created = note.created_at
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
    message = EmailMessage()
    message["Subject"] = clean_subject(note.subject)
    message["From"] = from_addr
    message["To"] = note.recipient
    message["Date"] = format_datetime(created.astimezone(UTC))
    message["Message-ID"] = message_id(note.id)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(note.text)
    if note.html:
        message.add_alternative(note.html, subtype="html")
    return message


class SmtpNotifier(Notifier):
    channel: ClassVar[str] = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._context = config.ssl_context()
        self._sender = parse_mailbox(config.from_addr)

    def build_message(self, note: Notification) -> EmailMessage:
        """The e-mail for ``note``; :class:`DeliveryError` (not retryable) if its
        recipient isn't a single valid address."""
        self._recipient(note)
        return compose(note, self._config.from_addr)

    def deliver(self, note: Notification) -> None:
        recipient = self._recipient(note)
        message = compose(note, self._config.from_addr)
        smtp = self._open()
        try:
            self._send(smtp, message, recipient)
        finally:
            _close(smtp)

    def _recipient(self, note: Notification) -> str:
        try:
            return parse_mailbox(note.recipient)
        except ValueError:
            raise DeliveryError("recipient is not a single valid e-mail address", False) from None

    def _open(self) -> smtplib.SMTP:
        config = self._config
        try:
            smtp: smtplib.SMTP
            if config.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    local_hostname=config.local_hostname,
                    timeout=config.timeout,
                    context=self._context,
                )
            else:
                smtp = smtplib.SMTP(
                    config.host,
                    config.port,
                    local_hostname=config.local_hostname,
                    timeout=config.timeout,
                )
        except smtplib.SMTPResponseException as error:
            raise _reply_error("relay refused the connection", error) from error
        except OSError as error:  # refused, unreachable, timeout, TLS failure
            raise DeliveryError(f"cannot reach SMTP relay: {_describe(error)}", True) from error
        try:
            if config.security == "starttls":
                smtp.ehlo()
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if config.username is not None and config.password is not None:
                smtp.login(config.username, config.password)
        except smtplib.SMTPAuthenticationError as error:
            _close(smtp)
            # The relay's credentials are wrong for every message alike: keep the
            # messages pending while an operator fixes the configuration.
            raise DeliveryError(f"SMTP login failed: {error.smtp_code}", True) from error
        except smtplib.SMTPResponseException as error:
            _close(smtp)
            raise _reply_error("relay refused the session", error) from error
        except OSError as error:  # includes SMTPNotSupportedError (no STARTTLS/AUTH)
            _close(smtp)
            raise DeliveryError(f"SMTP session failed: {_describe(error)}", True) from error
        return smtp

    def _send(self, smtp: smtplib.SMTP, message: EmailMessage, recipient: str) -> None:
        try:
            smtp.send_message(message, self._sender, [recipient])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _reply_error(
                "recipient refused", smtplib.SMTPResponseException(code, reply)
            ) from error
        except smtplib.SMTPResponseException as error:  # sender refused, data refused
            raise _reply_error("message refused", error) from error
        except smtplib.SMTPNotSupportedError as error:  # SMTPUTF8 needed, relay lacks it
            raise DeliveryError(f"relay can't take this message: {error}", False) from error
        except OSError as error:
            raise DeliveryError(f"sending failed: {_describe(error)}", True) from error


def _reply_error(what: str, error: smtplib.SMTPResponseException) -> DeliveryError:
    """4xx replies are transient, 5xx permanent (RFC 5321 §4.2.1); anything else (a
    dropped connection reports -1) is treated as transient."""
    reply = error.smtp_error
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = " ".join(text.split())[:300]
    return DeliveryError(f"{what}: {error.smtp_code} {text}", not 500 <= error.smtp_code < 600)


def _describe(error: OSError) -> str:
    return f"{type(error).__name__}: {error}"


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT politely; the message is already accepted, so a failure here is ignored."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
