"""The runtime-independent engine: routes each event to its user and runs the
processors over that user's state."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import msgspec

from usertide.engine.base import Interaction, Output, Processor, SessionClosed, UserState
from usertide.engine.identity import ANON_PREFIX, IdentityResolver
from usertide.engine.state import StateCodec
from usertide.events import Event
from usertide.store.base import EngineCommit, SessionRecord

# Keys of state kept per something other than a user: "\x1f<processor>\x1f<key>". The
# unit separator cannot appear in ids that come through capture's JSON by accident.
KEYED_SEP = "\x1f"
KEYED_PREFIX = KEYED_SEP


def keyed_key(processor: str, key: str) -> str:
    return f"{KEYED_SEP}{processor}{KEYED_SEP}{key}"


# Global models change only where the log says so: a trainer stores a new version, then
# appends a ``$model`` event (``source="usertide"``, which capture never gives an event)
# naming it; the engine activates that version when it applies that event, so a replay
# switches at the same place and scores every event with the version that scored it.
# The versions in force are checkpointed with the states, under MODELS_KEY.
MODEL_EVENT = "$model"
SYSTEM_SOURCE = "usertide"
MODELS_KEY = f"{KEYED_SEP}models"
Activate = Callable[[int], None]


def model_event(model: str, version: int, when: datetime) -> Event:
    return Event(
        # unique per announcement: activating a version again (a rollback) is a new event
        id=f"usertide-model-{model}-{version}-{uuid.uuid4().hex[:16]}",
        type="track",
        name=MODEL_EVENT,
        anonymous_id=SYSTEM_SOURCE,
        timestamp=when,
        received_at=when,
        properties={"model": model, "version": version},
        source=SYSTEM_SOURCE,
    )


class SessionRecorder(Protocol):
    """Builds the session records a commit writes (see ``processors/session_record.py``)."""

    def live(self, state: UserState) -> SessionRecord | None: ...

    def closed(self, closed: SessionClosed) -> SessionRecord: ...

    def finish(self, records: list[SessionRecord]) -> None: ...


@dataclass(frozen=True)
class Changes:
    """What changed since the last commit, taken from the engine."""

    offset: int
    dirty: set[str]
    deleted: set[str]
    aliases: dict[str, str]
    closed: list[SessionClosed]
    retry_sessions: list[SessionRecord]
    interactions: list[Interaction] = field(default_factory=list)


class Engine:
    """Per-user state in memory: recently used users decoded, the rest as bytes.

    ``hot_capacity`` bounds how many users are kept as Python objects; the others are
    kept encoded (a few hundred bytes each) and decoded on their next event.
    """

    def __init__(
        self,
        processors: Sequence[Processor[Any]],
        *,
        consumer: str = "engine",
        hot_capacity: int = 50_000,
        models: Mapping[str, Activate] | None = None,
    ) -> None:
        self.processors = [p for p in processors if p.key_kind == "user"]
        self.keyed = [p for p in processors if p.key_kind != "user"]
        self.codec = StateCodec(self.processors)
        self._keyed_codecs = {p.name: StateCodec([p]) for p in self.keyed}
        self.consumer = consumer
        self.identity = IdentityResolver()
        self.hot: OrderedDict[str, UserState] = OrderedDict()
        self.cold: dict[str, bytes] = {}
        self.hot_capacity = hot_capacity
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()
        self.new_aliases: dict[str, str] = {}
        self.closed: list[SessionClosed] = []  # sessions closed since the last commit
        self.interactions: list[Interaction] = []  # item events since the last commit
        self.retry_sessions: list[SessionRecord] = []  # closed ones a failed commit had
        self.offset = 0
        self.activate: dict[str, Activate] = dict(models or {})
        self.models: dict[str, int] = {}  # the version in force of each global model
        # What apply() walks for every event, looked up once.
        self._plan = [(p, p.name) for p in self.processors]
        self._keyed_plan = [
            (p, p.name, keyed_key(p.name, ""), self._keyed_codecs[p.name]) for p in self.keyed
        ]

    # -- loading ---------------------------------------------------------------
    def restore(self, offset: int, states: Any, aliases: dict[str, str]) -> None:
        self.offset = offset
        self.identity = IdentityResolver(aliases)
        restored = False
        for key, data in states:
            restored = True
            if key == MODELS_KEY:
                self.models = msgspec.msgpack.decode(data, type=dict[str, int])
            else:
                self.cold[key] = data
        if offset == 0 and not restored:
            # The log from its beginning: every version was announced in it, so none is
            # in force before its first $model event (version 0: the untrained model).
            self.models = dict.fromkeys(self.activate, 0)
        # (a checkpoint from before models were announced has none: the latest stays)
        for model, version in self.models.items():
            if model in self.activate:
                self.activate[model](version)  # in force at the checkpoint: before replay

    # -- processing ------------------------------------------------------------
    def apply(self, event: Event) -> list[Output]:
        if event.offset is not None and event.offset <= self.offset:
            return []  # already applied before the checkpoint we resumed from
        if event.source == SYSTEM_SOURCE and event.name == MODEL_EVENT:
            self._activate(event)
            return []
        scratch: dict[str, Any] = {}
        outputs: list[Output] = []
        dirty = self.dirty
        hot = self.hot
        for keyed, name, prefix, codec in self._keyed_plan:
            sub_key = keyed.key(event)
            if sub_key is None:
                continue
            key = prefix + sub_key
            keyed_state = hot.get(key)  # _state's hot path, inline: four series an event
            if keyed_state is None:
                keyed_state = self._state(key, codec)
            else:
                hot.move_to_end(key)
            keyed_state.scratch = scratch
            produced = keyed.process(event, keyed_state.slots[name], keyed_state)
            if produced:
                outputs.extend(produced)
            dirty.add(key)
        route = self.identity.route(event, self._known_users_if_alias(event))
        user_key = route.key
        state = self._state(user_key)
        if route.merge_from is not None:
            self._merge(state, route.merge_from)
        if route.new_alias is not None:
            self.new_aliases[route.new_alias[0]] = route.new_alias[1]
        state.scratch = scratch
        slots = state.slots
        for processor, name in self._plan:
            produced = processor.process(event, slots[name], state)
            if produced:
                outputs.extend(produced)
        if outputs:
            for output in outputs:
                kind = type(output)
                if kind is SessionClosed:
                    self.closed.append(output)  # type: ignore[arg-type]
                elif kind is Interaction:
                    self.interactions.append(output)  # type: ignore[arg-type]
        dirty.add(user_key)
        if event.offset is not None:
            self.offset = event.offset
        if len(self.hot) > self.hot_capacity:
            self._evict()
        return outputs

    def _activate(self, event: Event) -> None:
        model, version = event.properties.get("model"), event.properties.get("version")
        if isinstance(model, str) and isinstance(version, int) and model in self.activate:
            self.activate[model](version)
            self.models[model] = version
            self.dirty.add(MODELS_KEY)
        if event.offset is not None:
            self.offset = event.offset

    def _known_users_if_alias(self, event: Event) -> set[str] | None:
        if event.type != "alias" or not event.previous_id:
            return None
        pid = event.previous_id
        return {pid} if (pid in self.hot or pid in self.cold) else set()

    def codec_of(self, key: str) -> StateCodec:
        if key.startswith(KEYED_PREFIX):
            return self._keyed_codecs[key.split(KEYED_SEP, 2)[1]]
        return self.codec

    def _state(self, key: str, codec: StateCodec | None = None) -> UserState:
        state = self.hot.get(key)
        if state is not None:
            self.hot.move_to_end(key)
            return state
        codec = codec or self.codec_of(key)
        data = self.cold.pop(key, None)
        state = codec.decode(key, data) if data is not None else codec.new(key)
        self.deleted.discard(key)
        self.hot[key] = state
        return state

    def _evict(self) -> None:
        # Only between events: a state is never encoded while a processor changes it.
        while len(self.hot) > self.hot_capacity:
            old_key, old_state = self.hot.popitem(last=False)
            self.cold[old_key] = self.codec_of(old_key).encode(old_state)

    def _merge(self, into: UserState, from_key: str) -> None:
        if from_key not in self.hot and from_key not in self.cold:
            return
        other = self._state(from_key)
        for processor in self.processors:
            name = processor.name
            into.slots[name] = processor.merge(into.slots[name], other.slots[name])
        self.hot.pop(from_key, None)
        self.dirty.discard(from_key)
        self.deleted.add(from_key)

    # -- reading ---------------------------------------------------------------
    def lookup(self, key: str) -> UserState | None:
        state = self.hot.get(key)
        if state is not None:
            return state
        data = self.cold.get(key)
        return self.codec_of(key).decode(key, data) if data is not None else None

    def view(self, state: UserState) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for processor in (*self.processors, *self.keyed):
            slot = state.slots.get(processor.name)
            if slot is not None:
                out[processor.name] = processor.view(slot)
        return out

    def forget(self, keys: Sequence[str]) -> None:
        """Drop users from memory (after they were erased from the store)."""
        for key in keys:
            self.hot.pop(key, None)
            self.cold.pop(key, None)
            self.dirty.discard(key)
            self.deleted.discard(key)
        gone = set(keys)
        self.closed = [c for c in self.closed if c.user_key not in gone]
        self.interactions = [i for i in self.interactions if i.user_key not in gone]
        self.retry_sessions = [r for r in self.retry_sessions if r.user_key not in gone]
        user_keys = {k for k in keys if not k.startswith(ANON_PREFIX)}
        for anon, user in list(self.identity.aliases.items()):
            if user in user_keys:
                del self.identity.aliases[anon]
                self.new_aliases.pop(anon, None)

    # -- checkpointing ---------------------------------------------------------
    def take_commit(
        self, profile_of: Any = None, sessions: SessionRecorder | None = None
    ) -> EngineCommit:
        """Collect what changed since the last commit and reset the change sets."""
        return self.encode_changes(self.take_changes(), profile_of, sessions)

    def take_changes(self) -> Changes:
        """Take the change sets, leaving them empty (cheap: the sets are swapped)."""
        changes = Changes(
            self.offset, self.dirty, self.deleted, self.new_aliases, self.closed,
            self.retry_sessions, self.interactions,
        )  # fmt: skip
        self.dirty, self.deleted, self.new_aliases = set(), set(), {}
        self.closed, self.retry_sessions, self.interactions = [], [], []
        return changes

    def encode_changes(
        self, changes: Changes, profile_of: Any = None, sessions: SessionRecorder | None = None
    ) -> EngineCommit:
        """The commit of ``changes``: their states encoded, without changing the
        engine (so it may run while readers look at the states, not while events are
        applied)."""
        states: dict[str, bytes | None] = {}
        profiles: dict[str, dict[str, Any] | None] = {}
        records = list(changes.retry_sessions)
        if sessions is not None:
            records.extend(sessions.closed(c) for c in changes.closed)
        for key in changes.dirty:
            if key == MODELS_KEY:
                states[key] = msgspec.msgpack.encode(self.models)
                continue
            codec = self.codec_of(key)
            state = self.hot.get(key)
            if state is None:
                data = self.cold.get(key)
                if data is None:
                    continue
                state = codec.decode(key, data)
            states[key] = codec.encode(state)
            if not key.startswith(KEYED_PREFIX):
                if profile_of is not None:
                    profiles[key] = profile_of(state)
                if sessions is not None:
                    record = sessions.live(state)
                    if record is not None:
                        records.append(record)
        for key in changes.deleted:
            states[key] = None
            profiles[key] = None
        if sessions is not None:
            sessions.finish(records)
        return EngineCommit(
            consumer=self.consumer,
            offset=changes.offset,
            states=states,
            profiles=profiles,
            aliases=dict(changes.aliases),
            sessions=records,
            interactions=list(changes.interactions),
        )

    def requeue(self, commit: EngineCommit) -> None:
        """Mark a commit's changes pending again after the store failed to take it."""
        for key, data in commit.states.items():
            (self.dirty if data is not None else self.deleted).add(key)
        for anon, user in commit.aliases.items():
            self.new_aliases.setdefault(anon, user)
        # live sessions are written again from their states; closed ones are kept
        self.retry_sessions[:0] = [r for r in commit.sessions if r.closed]
        self.interactions[:0] = commit.interactions

    def user_count(self) -> int:
        return len(self.hot) + len(self.cold)
