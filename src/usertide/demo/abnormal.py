"""The demo's abnormal sessions: the session model trained on the shop's stored sessions,
then the sessions it finds most abnormal, with their reasons, beside the planted scrapers,
and the sessions most likely to convert."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from usertide.anomaly.trainer import NotEnoughData
from usertide.processors.features import FEATURES
from usertide.propensity.model import NotEnoughConversions
from usertide.propensity.tracker import inputs_of
from usertide.service import Service
from usertide.store.base import SessionQuery

TOP = 8


def print_sessions(console: Console, service: Service, planted: frozenset[str]) -> None:
    try:
        model = service.session_trainer.train_once()
    except NotEnoughData as exc:
        console.print(f"[dim]session model not trained: {escape(str(exc))}[/dim]")
        return
    records = [
        r
        for r in service.store.sessions(SessionQuery(limit=1_000_000))
        if all(n in r.features for n in FEATURES)
    ]
    X = np.array([[r.features[n] for n in FEATURES] for r in records])
    scores = model.score_many(X)
    order = np.argsort(-scores)
    table = Table(title=f"most abnormal sessions (session model v{model.version}, "
                  f"{model.card.rows:,} sessions)")  # fmt: skip
    for column in ("visitor", "score", "pages", "why"):
        table.add_column(column)
    for i in order[:TOP]:
        r = records[i]
        who = r.user_id or r.anonymous_id or r.user_key
        marker = " [green](planted scraper)[/green]" if r.anonymous_id in planted else ""
        why = "; ".join(x.message for x in model.card.reasons(list(X[i]))) or "-"
        table.add_row(f"{escape(who)}{marker}", f"{scores[i]:.3f}", str(r.pages), escape(why))
    console.print(table)
    flagged = {records[i].anonymous_id for i in order if scores[i] >= model.card.medium}
    caught = len(planted & flagged)
    console.print(
        f"planted scraper visits labelled Anomaly: [bold]{caught} of {len(planted)}[/bold]; "
        f"other sessions labelled Anomaly: {len(flagged - planted)} of {len(records):,}"
    )
    _conversion(console, service)


def _conversion(console: Console, service: Service) -> None:
    try:
        trained = service.conversion_trainer.train_once()
    except NotEnoughConversions as exc:
        console.print(f"[dim]conversion model not trained: {escape(str(exc))}[/dim]")
        return
    # what the model says of every session stored now (the engine adds it to each live
    # session's record at the checkpoints after the user's next event)
    scored = []
    for r in service.store.sessions(SessionQuery(limit=1_000_000)):
        x = inputs_of(r.features, r.conversion) if r.conversion else None
        if x is not None and not r.conversion.get("converted"):  # type: ignore[union-attr]
            scored.append((r, x))
    probabilities = trained.probabilities([x for _, x in scored])
    ranked = sorted(zip(probabilities, (r for r, _ in scored), strict=True), key=lambda p: -p[0])
    shown = ", ".join(
        f"{escape(r.user_id or r.anonymous_id or r.user_key)} {p:.0%}" for p, r in ranked[:5]
    )
    console.print(
        f"conversion model v{trained.version}: the sessions most likely to reach "
        f"'{escape(service.goal.event)}' (of those that have not yet): {shown or 'none'}"
    )
