"""Live messages for stream clients: what the engine applies and finds, and the alerts
as they are stored, handed to each client without ever making the engine wait."""

from usertide.live.broadcast import Broadcaster, Subscription
from usertide.live.filters import KINDS, StreamFilter

__all__ = ["KINDS", "Broadcaster", "StreamFilter", "Subscription"]
