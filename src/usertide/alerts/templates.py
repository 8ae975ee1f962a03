"""The words of alert notifications: admin e-mail, the user's "was this you?" e-mail,
the digest and the webhook payload. User-supplied strings are escaped in HTML and
stripped of line breaks in subjects."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from usertide.alerts.model import Alert

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Message(NamedTuple):
    subject: str
    text: str
    html: str


def one_line(value: object, limit: int = 120) -> str:
    """For subjects and single-line fields: no control characters (no header injection)."""
    return _CONTROL.sub(" ", str(value)).strip()[:limit]


def _where(alert: Alert) -> str:
    data = alert.data
    place = ", ".join(str(x) for x in (data.get("city"), data.get("country_name")) if x)
    return place or "an unknown place"


def _when(alert: Alert) -> str:
    return alert.occurred_at.strftime("%Y-%m-%d %H:%M UTC")


# Detectors whose alerts are about something other than a sign-in: what the alert is.
_ABOUT = {"session_anomaly": "Abnormal session"}


def _about(alert: Alert) -> str | None:
    if alert.detector.startswith("traffic_"):
        return "Traffic anomaly"
    return _ABOUT.get(alert.detector)


def _why_lines(alert: Alert, evidence_url: str) -> list[str]:
    """The end of an admin e-mail's text: the reasons and the evidence link."""
    reasons = [f"  - {one_line(r.message, 300)}" for r in alert.reasons]
    return ["", "Why:", *reasons, "", f"Evidence: {evidence_url}"]


def _why_html(alert: Alert, evidence_url: str) -> str:
    items = "".join(f"<li>{html.escape(r.message)}</li>" for r in alert.reasons)
    link = html.escape(evidence_url, quote=True)
    return f'<p>Why:</p><ul>{items}</ul><p><a href="{link}">Evidence</a></p>'


def behaviour_alert(alert: Alert, app: str, evidence_url: str, about: str) -> Message:
    """A session or traffic alert: what, when, for whom, and the reasons."""
    headline = alert.reasons[0].message if alert.reasons else about.lower()
    subject = one_line(f"[{app}] {about} ({alert.level}): {alert.user_id}: {headline}", 200)
    lines = [
        f"{about} ({alert.level}, score {alert.score:.2f}): {one_line(alert.user_id)}",
        f"When: {_when(alert)}",
        *_why_lines(alert, evidence_url),
    ]
    body = (
        f"<p><strong>{html.escape(about)}</strong> ({html.escape(alert.level)}, score "
        f"{alert.score:.2f}): <code>{html.escape(alert.user_id)}</code></p>"
        f"<p>When: {html.escape(_when(alert))}</p>"
        f"{_why_html(alert, evidence_url)}"
    )
    return Message(subject, "\n".join(lines), body)


def admin_alert(alert: Alert, app: str, evidence_url: str) -> Message:
    about = _about(alert)
    if about is not None:
        return behaviour_alert(alert, app, evidence_url, about)
    codes = ", ".join(r.code.replace("_", " ") for r in alert.reasons) or "unusual activity"
    subject = one_line(
        f"[{app}] {alert.level.capitalize()}-risk sign-in for {alert.user_id}: {codes}", 200
    )
    lines = [
        f"{alert.level.capitalize()}-risk sign-in (score {alert.score:.2f}) for user "
        f"{one_line(alert.user_id)}",
        f"When: {_when(alert)}",
        f"Where: {one_line(_where(alert))} (IP {one_line(alert.data.get('ip') or '?')}, "
        f"network {one_line(alert.data.get('network') or '?')})",
        f"Device: {one_line(alert.data.get('device') or '?')}",
        f"Suggested action: {alert.data.get('action', '?')}",
        *_why_lines(alert, evidence_url),
    ]
    body = (
        f"<p><strong>{html.escape(alert.level.capitalize())}-risk sign-in</strong> "
        f"(score {alert.score:.2f}) for user <code>{html.escape(alert.user_id)}</code></p>"
        f"<p>When: {html.escape(_when(alert))}<br>"
        f"Where: {html.escape(_where(alert))} (IP {html.escape(str(alert.data.get('ip')))}, "
        f"network {html.escape(str(alert.data.get('network')))})<br>"
        f"Device: {html.escape(str(alert.data.get('device')))}<br>"
        f"Suggested action: {html.escape(str(alert.data.get('action')))}</p>"
        f"{_why_html(alert, evidence_url)}"
    )
    return Message(subject, "\n".join(lines), body)


def user_signin(alert: Alert, app: str, yes_url: str, no_url: str, name: str | None) -> Message:
    device = one_line(alert.data.get("device") or "an unknown device")
    where = one_line(_where(alert))
    subject = one_line(f"New sign-in to {app} from {device} near {where}", 200)
    greeting = f"Hi {one_line(name, 60)}," if name else "Hi,"
    text = "\n".join(
        [
            greeting,
            "",
            f"New sign-in to {one_line(app)} from {device} near {where} at {_when(alert)} — "
            "was this you?",
            "",
            f"Yes, it was me: {yes_url}",
            f"No, secure my account: {no_url}",
            "",
            "If it was not you, change your password now. These links expire in 7 days.",
        ]
    )
    body = (
        f"<p>{html.escape(greeting)}</p>"
        f"<p>New sign-in to {html.escape(app)} from <strong>{html.escape(device)}</strong> "
        f"near <strong>{html.escape(where)}</strong> at {html.escape(_when(alert))} — "
        "was this you?</p>"
        f'<p><a href="{html.escape(yes_url, quote=True)}">Yes, it was me</a> &nbsp; '
        f'<a href="{html.escape(no_url, quote=True)}">No, secure my account</a></p>'
        "<p>If it was not you, change your password now. These links expire in 7 days.</p>"
    )
    return Message(subject, text, body)


def digest(alerts: Sequence[Alert], app: str) -> Message:
    subject = one_line(f"[{app}] {len(alerts)} more sign-in alerts (throttled)", 200)
    lines = [f"{len(alerts)} alerts were raised while notifications were throttled:", ""]
    lines += [
        f"  - {a.created_at:%H:%M} {one_line(a.user_id)}: {a.level}, "
        f"{', '.join(a.codes) or 'unusual'} ({one_line(_where(a))})"
        for a in alerts
    ]
    rows = "".join(
        f"<tr><td>{a.created_at:%H:%M}</td><td>{html.escape(a.user_id)}</td>"
        f"<td>{html.escape(a.level)}</td><td>{html.escape(', '.join(a.codes))}</td>"
        f"<td>{html.escape(_where(a))}</td></tr>"
        for a in alerts
    )
    body = (
        f"<p>{len(alerts)} alerts were raised while notifications were throttled:</p>"
        f"<table>{rows}</table>"
    )
    return Message(subject, "\n".join(lines), body)


def webhook_payload(alert: Alert) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "alert.created", "alert": msgspec.to_builtins(alert)}
    return out
