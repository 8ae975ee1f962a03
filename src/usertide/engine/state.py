"""Serializing per-user state to bytes and back (a slot per processor, msgpack)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from usertide.engine.base import Processor, UserState

_envelope_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(dict[str, msgspec.Raw])


class StateCodec:
    """Encodes a :class:`UserState` as ``{processor name: slot bytes}``.

    A slot that fails to decode (its processor changed its state type) starts again
    from the processor's initial state instead of failing the user.
    """

    def __init__(self, processors: Sequence[Processor[Any]]) -> None:
        self.processors = list(processors)
        self._decoders = {p.name: msgspec.msgpack.Decoder(p.state_type) for p in self.processors}

    def new(self, key: str) -> UserState:
        return UserState(key, {p.name: p.initial() for p in self.processors})

    def encode(self, state: UserState) -> bytes:
        return _envelope_encoder.encode(state.slots)

    def decode(self, key: str, data: bytes) -> UserState:
        raw = _envelope_decoder.decode(data)
        slots: dict[str, msgspec.Struct] = {}
        for processor in self.processors:
            blob = raw.get(processor.name)
            if blob is None:
                slots[processor.name] = processor.initial()
                continue
            try:
                slots[processor.name] = self._decoders[processor.name].decode(blob)
            except (msgspec.DecodeError, msgspec.ValidationError):
                slots[processor.name] = processor.initial()
        return UserState(key, slots)
