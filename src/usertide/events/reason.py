"""A reason a person can read, attached to detections and alerts."""

from __future__ import annotations

from typing import Any

import msgspec


class Reason(msgspec.Struct, kw_only=True, frozen=True):
    code: str
    message: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
