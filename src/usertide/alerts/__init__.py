"""Alerts: from detections to a reviewed status, with notifications."""

from usertide.alerts.model import Alert, AlertStatus, alert_id

__all__ = ["Alert", "AlertStatus", "alert_id"]
