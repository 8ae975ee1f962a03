"""Scoring a sign-in synchronously: the engine's state, plus the sign-ins already in the
log that the engine has not applied yet (``InFlight``), without changing either."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

from usertide.engine.base import UserState
from usertide.engine.core import Engine, keyed_key
from usertide.events import Event
from usertide.risk.assess import Assessment
from usertide.risk.config import RiskConfig
from usertide.risk.detector import (
    NETWORK_SCRATCH,
    LoginRisk,
    NetworkState,
    NetworkVelocity,
    is_login,
)
from usertide.risk.features import login_features
from usertide.risk.history import LoginHistory
from usertide.risk.inflight import InFlight

T = TypeVar("T", bound=msgspec.Struct)
_USER = "u\x1f"
_NETWORK = "n\x1f"


def sign_in_keys(config: RiskConfig) -> Callable[[Event], tuple[str, ...]]:
    """What a sign-in counts for in ``InFlight``: its account and its network."""

    def keys(event: Event) -> tuple[str, ...]:
        if not is_login(event, config) or not event.user_id:
            return ()
        prefix = login_features(event).prefix
        user = _USER + event.user_id
        return (user, _NETWORK + prefix) if prefix is not None else (user,)

    return keys


def assess_now(
    engine: Engine,
    risk: LoginRisk,
    velocity: NetworkVelocity,
    event: Event,
    inflight: InFlight | None = None,
) -> Assessment:
    """What the engine would decide for ``event`` once it has applied everything in the
    log before it. Call it between events (``EmbeddedRuntime.read``); it reads state
    and never writes it."""
    user_id = event.user_id or ""
    key = engine.identity.aliases.get(user_id, user_id)
    state = engine.lookup(key)
    found = state.slots.get(risk.name) if state is not None else None
    history = found if isinstance(found, LoginHistory) else LoginHistory()
    prefix = login_features(event).prefix
    network_state = _network_state(engine, velocity, prefix)
    if inflight is not None:
        late_user = inflight.pending(_USER + user_id) if user_id else []
        late_network = inflight.pending(_NETWORK + prefix) if prefix is not None else []
        if late_user or late_network:
            history, network_state = _catch_up(
                engine, risk, velocity, history, network_state, prefix, late_user, late_network
            )
    return risk.assess(event, history, velocity.peek(event, network_state))


def _network_state(
    engine: Engine, velocity: NetworkVelocity, prefix: str | None
) -> NetworkState | None:
    if prefix is None:
        return None
    holder = engine.lookup(keyed_key(velocity.name, prefix))
    found = holder.slots.get(velocity.name) if holder is not None else None
    return found if isinstance(found, NetworkState) else None


def _catch_up(
    engine: Engine,
    risk: LoginRisk,
    velocity: NetworkVelocity,
    history: LoginHistory,
    network: NetworkState | None,
    prefix: str | None,
    late_user: list[Event],
    late_network: list[Event],
) -> tuple[LoginHistory, NetworkState | None]:
    """Apply the sign-ins not yet applied, in log order, to copies of the states, as
    the engine will: the network's first (its activity is what the account's sees)."""
    history = _copy(history, LoginHistory)
    network = _copy(network, NetworkState) if network is not None else NetworkState()
    scratch = UserState("", {})
    user_ids = {e.id for e in late_user}
    # In log order: the durable ones by offset, then the ones still in the log's queue
    # in the order it took them (a stable sort keeps that order).
    by_id = {e.id: e for e in (*late_network, *late_user)}
    ordered = sorted(by_id.values(), key=lambda e: (e.offset is None, e.offset or 0))
    for late in ordered:
        late_prefix = login_features(late).prefix
        if late_prefix == prefix:
            velocity.process(late, network, scratch)
        elif late.id in user_ids:
            # A sign-in of this account from another network: that network's activity
            # as the engine holds it (the answer only needs it when none was recorded).
            other = _network_state(engine, velocity, late_prefix)
            scratch.scratch[NETWORK_SCRATCH] = velocity.peek(late, other)
        if late.id in user_ids:
            risk.process(late, history, scratch)
    return history, network


def _copy(value: T, kind: type[T]) -> T:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(value), type=kind)
