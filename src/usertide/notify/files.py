"""E-mail written as ``.eml`` files to a folder: for the demo, for development, and for
deployments that hand mail to another system by directory."""

from __future__ import annotations

import os
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import ClassVar

from usertide.notify.base import DeliveryError, Notifier
from usertide.notify.model import Notification
from usertide.notify.smtp import clean_subject, message_id, parse_mailbox


class FileEmailNotifier(Notifier):
    channel: ClassVar[str] = "email"

    def __init__(self, directory: Path, from_addr: str) -> None:
        self.directory = Path(directory)
        self.from_addr = from_addr
        parse_mailbox(from_addr)

    def deliver(self, note: Notification) -> None:
        try:
            recipient = parse_mailbox(note.recipient)
        except ValueError as exc:
            raise DeliveryError(f"invalid recipient: {exc}", retryable=False) from exc
        created = note.created_at
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        message = EmailMessage()
        message["Subject"] = clean_subject(note.subject)
        message["From"] = self.from_addr
        message["To"] = recipient
        message["Date"] = format_datetime(created.astimezone(UTC))
        message["Message-ID"] = message_id(note.id)
        message.set_content(note.text)
        if note.html:
            message.add_alternative(note.html, subtype="html")
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message_id(note.id).strip("<>").replace("@", "_").replace("/", "_")
        path = self.directory / f"{name}.eml"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_bytes(message.as_bytes())
            os.replace(tmp, path)  # the same id delivered twice leaves one file
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc}", retryable=True) from exc
