"""Notifications: e-mail and webhooks, delivered from a durable outbox."""

from usertide.notify.model import Notification, NotificationStatus

__all__ = ["Notification", "NotificationStatus"]
