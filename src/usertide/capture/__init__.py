"""Capture: wire protocols (Segment, PostHog) that normalize request bodies into events."""

from usertide.capture.base import CaptureRequest, ParsedBatch, WireProtocol
from usertide.capture.errors import CaptureError, ItemError
from usertide.capture.posthog import PostHogProtocol
from usertide.capture.segment import SegmentProtocol

__all__ = [
    "CaptureError",
    "CaptureRequest",
    "ItemError",
    "ParsedBatch",
    "PostHogProtocol",
    "SegmentProtocol",
    "WireProtocol",
]
