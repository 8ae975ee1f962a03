"""E-mail written as ``.eml`` files to a folder: for the demo, for development, and for
deployments that hand mail to another system by directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from usertide.notify.base import DeliveryError, Notifier
from usertide.notify.model import Notification
from usertide.notify.smtp import compose, message_id, parse_mailbox


class FileEmailNotifier(Notifier):
    channel: ClassVar[str] = "email"

    def __init__(self, directory: Path, from_addr: str) -> None:
        self.directory = Path(directory)
        self.from_addr = from_addr
        parse_mailbox(from_addr)

    def deliver(self, note: Notification) -> None:
        try:
            parse_mailbox(note.recipient)  # compose() needs one valid mailbox
        except ValueError as exc:
            raise DeliveryError(f"invalid recipient: {exc}", retryable=False) from exc
        message = compose(note, self.from_addr)
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message_id(note.id).strip("<>").replace("@", "_").replace("/", "_")
        path = self.directory / f"{name}.eml"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_bytes(message.as_bytes())
            os.replace(tmp, path)  # the same id delivered twice leaves one file
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc}", retryable=True) from exc
