"""Scoring a sign-in synchronously, from the engine's current state, without changing it."""

from __future__ import annotations

from usertide.engine.core import Engine, keyed_key
from usertide.events import Event
from usertide.risk.assess import Assessment
from usertide.risk.detector import LoginRisk, NetworkState, NetworkVelocity
from usertide.risk.features import login_features
from usertide.risk.history import LoginHistory


def assess_now(
    engine: Engine, risk: LoginRisk, velocity: NetworkVelocity, event: Event
) -> Assessment:
    """What the engine would decide for ``event`` if it arrived now. Call it between
    events (``EmbeddedRuntime.read``); it reads state and never writes it."""
    key = engine.identity.aliases.get(event.user_id or "", event.user_id or "")
    state = engine.lookup(key)
    history = state.slots.get(risk.name) if state is not None else None
    prefix = login_features(event).prefix
    network_state = None
    if prefix is not None:
        holder = engine.lookup(keyed_key(velocity.name, prefix))
        network_state = holder.slots.get(velocity.name) if holder is not None else None
    network = velocity.peek(
        event, network_state if isinstance(network_state, NetworkState) else None
    )
    return risk.assess(
        event, history if isinstance(history, LoginHistory) else LoginHistory(), network
    )
