"""The per-user stream engine: processors over user state, and its runtimes."""

from usertide.engine.base import Detection, Output, Processor, Reason, SessionClosed, UserState
from usertide.engine.core import Engine
from usertide.engine.identity import IdentityResolver, Route
from usertide.engine.runtime import EmbeddedRuntime
from usertide.engine.state import StateCodec

__all__ = [
    "Detection",
    "EmbeddedRuntime",
    "Engine",
    "IdentityResolver",
    "Output",
    "Processor",
    "Reason",
    "Route",
    "SessionClosed",
    "StateCodec",
    "UserState",
]
