"""The demo shop's purchase funnel: view → cart → checkout → purchase, as the
analytics API computes it, printed with each step's rate and credible interval."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from usertide.analytics.funnels import parse_funnel
from usertide.analytics.report import funnel_report
from usertide.store import Store

STEPS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
LABELS = ("view", "cart", "checkout", "purchase")
WINDOW = "1d"


def shop_funnel(store: Store, start: datetime, end: datetime) -> dict[str, Any]:
    body = {
        "steps": [{"event": s} for s in STEPS],
        "window": WINDOW,
        "from": start.isoformat(),
        "to": end.isoformat(),
    }
    return funnel_report(store, parse_funnel(body, store.dialect))


def print_funnel(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"funnel {' → '.join(LABELS)} (within {WINDOW}, per person)")
    for column in ("step", "people", "from previous", "95 % credible interval", "median time"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for label, step in zip(LABELS, report["steps"], strict=True):
        conversion = step["conversion"]
        if conversion is None:
            table.add_row(label, f"{step['users']:,}", "", "", "")
            continue
        post = conversion["posterior"]
        ttc = step["time_to_convert"]
        table.add_row(
            label,
            f"{step['users']:,}",
            _pct(conversion["from_previous"]),
            f"{post['low']:.1%} – {post['high']:.1%}",
            f"{ttc['median_s'] / 60:.1f} min" if ttc else "",
        )
    overall = report["overall"]
    post = overall["posterior"]
    table.add_row(
        "overall",
        f"{overall['users']:,}",
        _pct(overall["from_first"]),
        f"{post['low']:.1%} – {post['high']:.1%}",
        "",
    )
    console.print(table)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
