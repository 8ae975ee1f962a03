"""From detections to alerts and notifications: rules, deduplication, throttling.

Called from the engine's thread (as a subscriber) and from the synchronous risk API;
both name an alert by its detection (``alert_id``), so the second one finds the first.
Notifications go to the durable outbox; over the throttle they wait for the digest.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from usertide.alerts import templates
from usertide.alerts.model import Alert, AlertStatus, alert_id
from usertide.alerts.rules import AlertPolicy, AlertRule
from usertide.engine.base import Detection, Output
from usertide.events import Context, Event
from usertide.notify.links import LinkSigner
from usertide.notify.model import Notification
from usertide.risk.detector import FEEDBACK_EVENT
from usertide.store.base import Store

log = logging.getLogger(__name__)

Contact = Callable[[str], tuple[str | None, str | None]]  # user id → (e-mail, name)
Enqueue = Callable[[Sequence[Notification]], int]
Listener = Callable[[Sequence[Alert]], None]  # told of new alerts once stored; must not block

RAISED_MEMORY = 100_000

VERDICTS = {
    "safe": AlertStatus.DISMISSED,
    "dismissed": AlertStatus.DISMISSED,
    "compromised": AlertStatus.CONFIRMED,
    "confirmed": AlertStatus.CONFIRMED,
}
MODEL_VERDICT = {AlertStatus.DISMISSED: "safe", AlertStatus.CONFIRMED: "compromised"}


@dataclass(frozen=True, slots=True)
class _Decided:
    """An alert the policy decided to raise, not stored yet."""

    alert: Alert
    rule: AlertRule
    throttled: bool


@dataclass
class Recipients:
    app_name: str = "usertide"
    base_url: str = "http://127.0.0.1:8000"
    admin_emails: tuple[str, ...] = ()
    webhook_urls: tuple[str, ...] = ()


@dataclass
class _Counters:
    sent: dict[str, deque[datetime]] = field(default_factory=lambda: defaultdict(deque))
    all_sent: deque[datetime] = field(default_factory=deque)


class AlertManager:
    def __init__(
        self,
        store: Store,
        *,
        policy: AlertPolicy | None = None,
        recipients: Recipients | None = None,
        enqueue: Enqueue | None = None,
        links: LinkSigner | None = None,
        contact: Contact | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.policy = policy or AlertPolicy()
        self.recipients = recipients or Recipients()
        self.enqueue = enqueue
        self.links = links
        self.contact = contact
        self.clock = clock
        self._lock = threading.RLock()
        self._recent: dict[tuple[str, str], datetime] = {}
        self._claimed: set[str] = set()  # ids decided by claim(), not decided again yet
        self._unstored: set[str] = set()  # ids given out by claim(), not stored yet
        self._stored = threading.Condition(self._lock)
        self._raised: OrderedDict[str, None] = OrderedDict()  # recently stored ids
        self._counters = _Counters()
        self.deduplicated = 0
        self._last_digest = clock()
        self.listeners: list[Listener] = []  # live streams

    def start(self) -> None:
        """Send the digest of throttled alerts every ``policy.digest_seconds``."""
        self._stop_digest = threading.Event()
        self._digest_thread = threading.Thread(
            target=self._digest_loop, name="usertide-digest", daemon=True
        )
        self._digest_thread.start()

    def stop(self) -> None:
        stop = getattr(self, "_stop_digest", None)
        if stop is not None:
            stop.set()
            self._digest_thread.join(timeout=10)

    def _digest_loop(self) -> None:
        while not self._stop_digest.wait(self.policy.digest_seconds):
            try:
                self.flush_digest()
            except Exception:
                log.exception("could not send the alert digest")

    def reload(self) -> None:
        """Rebuild the deduplication window from stored alerts (after a restart)."""
        with self._lock:
            self._load_recent()

    def _load_recent(self) -> None:
        since = self.clock() - timedelta(seconds=self.policy.dedup_seconds)
        for alert in self.store.alerts(since=since, limit=10_000):
            for code in _dedup_codes(alert.codes, alert.data.get("success")):
                key = (alert.user_id, code)
                self._recent[key] = max(self._recent.get(key, alert.created_at), alert.created_at)

    # -- from detections -------------------------------------------------------------
    def on_outputs(self, outputs: Sequence[Output]) -> None:
        """The engine's detections of one stretch of the log: their alerts are stored
        in one commit."""
        decided: list[_Decided] = []
        for output in outputs:
            if isinstance(output, Detection):
                try:
                    if (one := self._decide(output)) is not None:
                        decided.append(one)
                except Exception:
                    log.exception("could not raise an alert for %s", output.event_id)
        if decided:
            self._publish(decided)

    def claim(self, detection: Detection) -> str | None:
        """Decide now, store later: the id :meth:`raise_alert` will give this
        detection's alert, or ``None`` if no rule takes it or the deduplication window
        already holds all its reasons. Takes the window for it (no store access)."""
        raw = tuple(r.code for r in detection.reasons)
        codes = _dedup_codes(raw, detection.data.get("success"))
        if not any(r.matches(detection.detector, detection.level, raw) for r in self.policy.rules):
            return None
        now = self.clock()
        user = detection.user_key
        with self._lock:
            if not self._fresh(user, codes, now):
                self.deduplicated += 1
                return None
            for code in codes:
                self._recent[(user, code)] = now
            claimed = alert_id(detection.detector, detection.event_id)
            self._claimed.add(claimed)
            self._unstored.add(claimed)
        return claimed

    def wait_stored(self, alert_id: str, timeout: float = 10.0) -> bool:
        """Block until an alert :meth:`claim` gave out is in the store (the engine
        stores it with the other alerts of its load); ``False`` if it was never
        claimed or is still not stored after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._stored:
            while alert_id in self._unstored:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._stored.wait(remaining)
        return True

    def claimed(self, alert_id: str) -> bool:
        with self._lock:
            return alert_id in self._unstored

    def _fresh(self, user: str, codes: tuple[str, ...], now: datetime) -> list[str]:
        window = timedelta(seconds=self.policy.dedup_seconds)
        never = datetime.min.replace(tzinfo=UTC)
        return [c for c in codes if now - self._recent.get((user, c), never) > window]

    def raise_alert(self, detection: Detection) -> Alert | None:
        """Store and announce the alert for a detection, once.

        The decision (rules, deduplication, throttle) is taken under the lock; the
        store is written outside it, so the risk API's ``claim`` never waits for I/O.
        A detection whose alert exists already (the risk API raised it, or the engine
        replays after a restart) returns ``None`` and notifies nobody again.
        """
        decided = self._decide(detection)
        if decided is None:
            return None
        return self._publish([decided])[0]

    def _decide(self, detection: Detection) -> _Decided | None:
        raw = tuple(r.code for r in detection.reasons)
        codes = _dedup_codes(raw, detection.data.get("success"))
        rule = next(
            (r for r in self.policy.rules if r.matches(detection.detector, detection.level, raw)),
            None,
        )
        if rule is None:
            return None
        this = alert_id(detection.detector, detection.event_id)
        now = self.clock()
        user = detection.user_key
        with self._lock:
            if this in self._raised:
                return None
            if this in self._claimed:  # claim() already took the window for it
                self._claimed.discard(this)
            elif not self._fresh(user, codes, now):
                self.deduplicated += 1
                return None
            for code in codes:
                self._recent[(user, code)] = now
            throttled = self._throttled(user, now)
            self._raised[this] = None
            if len(self._raised) > RAISED_MEMORY:
                self._raised.popitem(last=False)
        alert = Alert(
            id=this,
            user_id=user,
            detector=detection.detector,
            event_id=detection.event_id,
            level=detection.level,
            score=detection.score,
            reasons=detection.reasons,
            data={**detection.data, "notified": "throttled" if throttled else "sent"},
            created_at=now,
            updated_at=now,
            occurred_at=datetime.fromtimestamp(detection.timestamp, UTC),
        )
        return _Decided(alert, rule, throttled)

    def _publish(self, decided: list[_Decided]) -> list[Alert | None]:
        """Store the alerts in one commit, then notify for the new, unthrottled ones;
        returns, per decision, the alert if it was new (else ``None``)."""
        new = self.store.alerts_add([d.alert for d in decided])
        with self._stored:
            self._unstored.difference_update(d.alert.id for d in decided)
            self._stored.notify_all()
        out: list[Alert | None] = []
        notes: list[Notification] = []
        for d in decided:
            if d.alert.id not in new:
                out.append(None)
                continue
            if not d.throttled:
                notes += self._notes(d.alert, d.rule)
            out.append(d.alert)
        if notes and self.enqueue is not None:
            self.enqueue(notes)
        stored = [a for a in out if a is not None]
        if stored:
            for listener in self.listeners:
                try:
                    listener(stored)
                except Exception:
                    log.exception("alert listener failed")
        return out

    def _throttled(self, user: str, now: datetime) -> bool:
        hour = now - timedelta(hours=1)
        per_user = self._counters.sent[user]
        for queue in (per_user, self._counters.all_sent):
            while queue and queue[0] < hour:
                queue.popleft()
        if (
            len(per_user) >= self.policy.user_per_hour
            or len(self._counters.all_sent) >= self.policy.global_per_hour
        ):
            return True
        per_user.append(now)
        self._counters.all_sent.append(now)
        return False

    # -- notifications ---------------------------------------------------------------
    def _notes(self, alert: Alert, rule: AlertRule) -> list[Notification]:
        if self.enqueue is None:
            return []
        r = self.recipients
        notes: list[Notification] = []
        evidence = f"{r.base_url.rstrip('/')}/v1/alerts/{alert.id}"
        if rule.notify_admins and r.admin_emails:
            message = templates.admin_alert(alert, r.app_name, evidence)
            notes += [
                self._note(alert, "email", to, "admin_alert", message) for to in r.admin_emails
            ]
        if rule.webhooks:
            notes += [
                Notification(
                    id=_note_id(alert.id, "webhook", url),
                    channel="webhook",
                    recipient=url,
                    kind="alert",
                    payload=templates.webhook_payload(alert),
                    created_at=self.clock(),
                )
                for url in r.webhook_urls
            ]
        if (
            rule.notify_user
            and alert.data.get("success")
            and self.links is not None
            and self.contact is not None
        ):
            email, name = self.contact(alert.user_id)
            if email:
                yes = self.links.url("safe", alert.id, alert.user_id)
                no = self.links.url("compromised", alert.id, alert.user_id)
                message = templates.user_signin(alert, r.app_name, yes, no, name)
                notes.append(self._note(alert, "email", email, "user_signin", message))
        return notes

    def _note(
        self, alert: Alert, channel: str, to: str, kind: str, message: templates.Message
    ) -> Notification:
        return Notification(
            id=_note_id(alert.id, kind, to),
            channel=channel,
            recipient=to,
            kind=kind,
            subject=message.subject,
            text=message.text,
            html=message.html,
            created_at=self.clock(),
        )

    def flush_digest(self) -> int:
        """Send one digest of the alerts held back by the throttle; returns how many."""
        if self.enqueue is None or not self.recipients.admin_emails:
            return 0
        with self._lock:
            held = [
                a
                for a in self.store.alerts(
                    since=self._last_digest - timedelta(days=1), limit=10_000
                )
                if a.data.get("notified") == "throttled"
            ]
            if not held:
                return 0
            message = templates.digest(
                sorted(held, key=lambda a: a.created_at), self.recipients.app_name
            )
            batch = hashlib.blake2b(
                "|".join(a.id for a in held).encode(), digest_size=8
            ).hexdigest()
            notes = [
                Notification(
                    id=_note_id(f"digest-{batch}", "digest", to),
                    channel="email",
                    recipient=to,
                    kind="digest",
                    subject=message.subject,
                    text=message.text,
                    html=message.html,
                    created_at=self.clock(),
                )
                for to in self.recipients.admin_emails
            ]
            for alert in held:
                alert.data["notified"] = "digest"
                self.store.alert_save(alert)
            self._last_digest = self.clock()
        self.enqueue(notes)
        return len(held)

    # -- feedback -------------------------------------------------------------------
    def feedback(self, alert_id_: str, verdict: str, source: str) -> tuple[Alert, Event]:
        """Record a verdict; returns the alert and the event that teaches the model
        (to be appended to the log by the caller). ``KeyError``/``ValueError`` for an
        unknown alert or verdict."""
        status = VERDICTS.get(verdict)
        if status is None:
            raise ValueError(f"verdict must be one of {', '.join(sorted(VERDICTS))}")
        with self._lock:
            alert = self.store.alert_get(alert_id_)
            if alert is None:
                raise KeyError(alert_id_)
            now = self.clock()
            alert.status = status
            alert.updated_at = now
            alert.feedback.append(
                {"verdict": MODEL_VERDICT[status], "source": source, "at": now.isoformat()}
            )
            self.store.alert_save(alert)
        event = Event(
            id=f"fb_{alert.id}_{len(alert.feedback)}",
            type="track",
            name=FEEDBACK_EVENT,
            user_id=alert.user_id,
            timestamp=now,
            received_at=now,
            context=Context(),
            properties={
                "event_id": alert.event_id,
                "verdict": MODEL_VERDICT[status],
                "alert_id": alert.id,
                "source": source,
            },
            source="feedback",
        )
        return alert, event


def _dedup_codes(codes: tuple[str, ...], success: object) -> tuple[str, ...]:
    """What deduplication counts as "the same reason": the code, and whether the attempt
    succeeded, so alerts on failed attempts never hide the successful sign-in after them."""
    outcome = "ok" if success is not False else "failed"
    return tuple(f"{code}:{outcome}" for code in codes or ("unusual",))


def _note_id(alert: str, kind: str, recipient: str) -> str:
    digest = hashlib.blake2b(recipient.encode(), digest_size=6).hexdigest()
    return f"{alert}:{kind}:{digest}"
