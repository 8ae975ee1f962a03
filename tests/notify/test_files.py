"""The .eml folder notifier (the demo's outbox)."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from notify_support import make_note

from usertide.notify import DeliveryError
from usertide.notify.files import FileEmailNotifier


def test_writes_one_parseable_file_per_notification(tmp_path: Path) -> None:
    notifier = FileEmailNotifier(tmp_path / "out", "Alerts <alerts@shop.test>")
    note = make_note()
    notifier.deliver(note)
    notifier.deliver(note)  # a repeat (after a crash) leaves one file
    (path,) = (tmp_path / "out").glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["To"] == note.recipient and message["From"] == "Alerts <alerts@shop.test>"


def test_refuses_bad_recipients(tmp_path: Path) -> None:
    notifier = FileEmailNotifier(tmp_path, "alerts@shop.test")
    with pytest.raises(DeliveryError) as info:
        notifier.deliver(make_note(recipient="a@x.test, b@y.test"))
    assert not info.value.retryable
