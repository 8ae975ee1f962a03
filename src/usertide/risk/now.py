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
        if user_id:
            history = (
                inflight.caught_up(
                    _USER + user_id,
                    lambda: history,
                    _copy_history,
                    _account_applier(engine, risk, velocity),
                )
                or history
            )
        if prefix is not None:
            base = network_state
            network_state = (
                inflight.caught_up(
                    _NETWORK + prefix,
                    lambda: base if base is not None else NetworkState(),
                    _copy_network,
                    _network_applier(velocity),
                )
                or network_state
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


def _account_applier(
    engine: Engine, risk: LoginRisk, velocity: NetworkVelocity
) -> Callable[[LoginHistory, Event], None]:
    def apply(history: LoginHistory, late: Event) -> None:
        # An attempt the risk API answered carries its assessment (the network's
        # activity no longer matters); another sign-in sees its network as the engine
        # holds it now.
        scratch = UserState("", {})
        other = _network_state(engine, velocity, login_features(late).prefix)
        scratch.scratch[NETWORK_SCRATCH] = velocity.peek(late, other)
        risk.process(late, history, scratch)

    return apply


def _network_applier(velocity: NetworkVelocity) -> Callable[[NetworkState, Event], None]:
    def apply(network: NetworkState, late: Event) -> None:
        velocity.process(late, network, UserState("", {}))

    return apply


def _copy_history(history: LoginHistory) -> LoginHistory:
    return _copy(history, LoginHistory)


def _copy_network(network: NetworkState) -> NetworkState:
    return _copy(network, NetworkState)


def _copy(value: T, kind: type[T]) -> T:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(value), type=kind)
