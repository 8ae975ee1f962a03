"""Notifications: e-mail and webhooks, delivered from a durable outbox."""

from usertide.notify.base import DeliveryError, Notifier
from usertide.notify.links import InvalidLink, LinkClaims, LinkSigner
from usertide.notify.model import Notification, NotificationStatus
from usertide.notify.netguard import UnsafeDestination, check_url
from usertide.notify.outbox import OutboxWorker
from usertide.notify.smtp import SmtpConfig, SmtpNotifier
from usertide.notify.webhook import WebhookConfig, WebhookNotifier, verify_signature

__all__ = [
    "DeliveryError",
    "InvalidLink",
    "LinkClaims",
    "LinkSigner",
    "Notification",
    "NotificationStatus",
    "Notifier",
    "OutboxWorker",
    "SmtpConfig",
    "SmtpNotifier",
    "UnsafeDestination",
    "WebhookConfig",
    "WebhookNotifier",
    "check_url",
    "verify_signature",
]
