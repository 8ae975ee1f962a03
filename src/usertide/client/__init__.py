"""Python client for the usertide collector (wire-compatible with Segment's batch API)."""

from usertide.client.client import Client, ErrorHandler
from usertide.client.transport import (
    BatchRejected,
    DeliveryCancelled,
    DeliveryError,
    RetriesExhausted,
)

__all__ = [
    "BatchRejected",
    "Client",
    "DeliveryCancelled",
    "DeliveryError",
    "ErrorHandler",
    "RetriesExhausted",
]
