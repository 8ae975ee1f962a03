"""The recommenders the service serves: global models that learn every interaction in
log order, and the item catalogue their answers are filtered by.

The engine emits an :class:`Interaction` for each event about an item; the runtime
hands each chunk's to :meth:`LiveRecommendations.follow` inside its lock, so for every
reader taking that lock (a recommendation request) the recommenders are exactly as far
as the users' states: the session an answer is for, and everything learned before it,
include every event acknowledged and applied for that user. The store keeps the
interactions; at start the recommenders are rebuilt from them (up to the engine's
checkpoint), then the replay of the log goes on from there, so a restart or a crash
gives the same models as an uninterrupted run.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from usertide.engine.base import Interaction, Output
from usertide.recommend import DEFAULT, RECOMMENDERS, Recommender, recommender
from usertide.store.base import Item, Store

# Served by default: the default and the textbook baselines it is compared with.
LIVE: Final = ("blend", "vstan", "vsknn", "sr", "ar", "trending", "popular")
SESSIONS_KEPT: Final = 200_000  # session id -> user, for requests by session id
REBUILD_PAGE: Final = 50_000
MAX_FILTERS: Final = 8

Filters = Sequence[tuple[str, str]]


def live_names(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``USERTIDE_RECOMMENDERS`` (comma-separated), else :data:`LIVE` (those known)."""
    env = os.environ if env is None else env
    given = tuple(n.strip() for n in env.get("USERTIDE_RECOMMENDERS", "").split(",") if n.strip())
    names = given or tuple(n for n in LIVE if n in RECOMMENDERS)
    unknown = [n for n in names if n not in RECOMMENDERS]
    if unknown:
        raise ValueError(
            f"USERTIDE_RECOMMENDERS: unknown {', '.join(unknown)}; "
            f"known: {', '.join(sorted(RECOMMENDERS))}"
        )
    return names


class ItemCatalogue:
    """Every item known: described by ``POST /v1/items`` (kept as given) or learned from
    the properties events carried (the latest wins, until the item is described)."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self._described: set[str] = set()  # posted: events no longer change them

    def __len__(self) -> int:
        return len(self.items)

    def learn(self, interaction: Interaction) -> None:
        item = self.items.get(interaction.item_id)
        if item is None:
            self.items[interaction.item_id] = Item(
                item_id=interaction.item_id,
                properties=dict(interaction.properties),
                updated=interaction.timestamp,
            )
        elif interaction.properties and interaction.item_id not in self._described:
            item.properties.update(interaction.properties)
            item.updated = max(item.updated, interaction.timestamp)

    def describe(self, items: Iterable[Item]) -> None:
        for item in items:
            self.items[item.item_id] = item
            self._described.add(item.item_id)

    def allowed(self, filters: Filters) -> Callable[[str], bool]:
        """Whether an item may be recommended: known items must be available and match
        every ``(property, value)`` filter (values compared as text, ignoring case)."""
        wanted = [(key, value.casefold()) for key, value in filters]
        items = self.items

        def allowed(item_id: str) -> bool:
            item = items.get(item_id)
            if item is None:
                return not wanted
            if not item.available:
                return False
            properties = item.properties
            for key, value in wanted:
                have = properties.get(key)
                if have is None or str(have).casefold() != value:
                    return False
            return True

        return allowed


class LiveRecommendations:
    """The served recommenders by name, learning together; thread-safe."""

    def __init__(self, names: Sequence[str] | None = None, default: str | None = None) -> None:
        self.names = tuple(names or live_names())
        if default is not None and default not in self.names:
            raise ValueError(f"the default recommender {default!r} is not among those served")
        # what a request naming none gets: the default, else the first served
        self.default = default or (DEFAULT if DEFAULT in self.names else self.names[0])
        self.models: dict[str, Recommender] = {name: recommender(name) for name in self.names}
        self.catalogue = ItemCatalogue()
        self.learned = 0  # interactions learned
        self._sessions: OrderedDict[str, str] = OrderedDict()  # session id -> user key
        self._lock = threading.Lock()

    # -- learning ------------------------------------------------------------------
    def follow(self, outputs: Sequence[Output]) -> None:
        """An engine follower: learn the chunk's interactions, in order."""
        interactions = [o for o in outputs if type(o) is Interaction]
        if interactions:
            self.learn(interactions)

    def learn(self, interactions: Iterable[Interaction]) -> None:
        models = list(self.models.values())
        with self._lock:
            sessions = self._sessions
            for interaction in interactions:
                session, item, t = (
                    interaction.session_id,
                    interaction.item_id,
                    interaction.timestamp,
                )
                for model in models:
                    model.learn(session, item, t)
                self.catalogue.learn(interaction)
                if session in sessions:
                    sessions.move_to_end(session)
                else:
                    sessions[session] = interaction.user_key
                    if len(sessions) > SESSIONS_KEPT:
                        sessions.popitem(last=False)
                self.learned += 1

    def rebuild(self, store: Store) -> int:
        """Learn every stored interaction (at start, before the engine replays the log
        from its checkpoint, which the stored ones end at) and the described items."""
        self.catalogue.describe(store.items_all())
        after, total = -1, 0
        while True:
            page = store.interactions(after, REBUILD_PAGE)
            if not page:
                return total
            # an event's items share its offset: a page ends only after its last item
            last = page[-1].offset if page[-1].offset is not None else after
            whole = [i for i in page if i.offset != last] if len(page) == REBUILD_PAGE else page
            if not whole:  # one event with a whole page of items (never, with 100 a max)
                whole = page
            self.learn(whole)
            total += len(whole)
            after = max(i.offset for i in whole if i.offset is not None)

    def describe(self, items: Sequence[Item]) -> None:
        with self._lock:
            self.catalogue.describe(items)

    def forget(self, user_keys: Iterable[str]) -> int:
        """Drop the sessions of erased users from every model's session index (their
        counts in aggregate statistics, such as popularity and rules, stay: nothing
        there says who). Returns how many sessions were dropped."""
        gone = set(user_keys)
        with self._lock:
            sessions = [s for s, user in self._sessions.items() if user in gone]
            for session in sessions:
                for model in self.models.values():
                    model.forget_session(session)
                del self._sessions[session]
        return len(sessions)

    # -- answering -----------------------------------------------------------------
    def user_of_session(self, session_id: str) -> str | None:
        with self._lock:
            return self._sessions.get(session_id)

    def recommend(
        self,
        name: str | None,
        session: Sequence[str],
        *,
        session_id: str | None,
        n: int,
        exclude: Iterable[str] = (),
        filters: Filters = (),
    ) -> tuple[str, list[tuple[str, float]]]:
        """The recommender's name and its best ``n`` for what follows ``session``."""
        model_name, model = self._model(name)
        with self._lock:
            allowed = self.catalogue.allowed(filters)
            answer = model.recommend(session, n, set(exclude), allowed, session_id=session_id)
        return model_name, answer

    def similar(
        self, name: str | None, item_id: str, *, n: int, filters: Filters = ()
    ) -> tuple[str, list[tuple[str, float]]]:
        model_name, model = self._model(name)
        with self._lock:
            return model_name, model.similar(item_id, n, (), self.catalogue.allowed(filters))

    def item(self, item_id: str) -> Item | None:
        with self._lock:
            return self.catalogue.items.get(item_id)

    def describe_models(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"recommender": name, "default": name == self.default, "items": m.items()}
                for name, m in self.models.items()
            ]

    def _model(self, name: str | None) -> tuple[str, Recommender]:
        chosen = name or self.default
        model = self.models.get(chosen)
        if model is None:
            raise KeyError(chosen)
        return chosen, model
