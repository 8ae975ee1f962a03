"""Service settings: defaults, overridden by ``USERTIDE_*`` environment variables and
then by command-line flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

IpPolicy = Literal["keep", "truncate", "drop"]


class Settings(msgspec.Struct, kw_only=True):
    data_dir: Path = Path("usertide-data")
    host: str = "127.0.0.1"
    port: int = 8000
    admin_key: str | None = None
    write_key: str | None = None
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    # Per write key: sustained requests per second and the burst allowed above it.
    rate_limit_rps: float = 5_000.0
    rate_limit_burst: float = 10_000.0
    # Recommendation requests with the write key (the JavaScript helper), per address.
    rec_rate_limit_rps: float = 10.0
    rec_rate_limit_burst: float = 30.0
    ip_policy: IpPolicy = "truncate"
    geoip_city_db: Path | None = None
    geoip_asn_db: Path | None = None
    trust_forwarded_for: bool = False
    checkpoint_interval: float = 1.0
    max_pending_events: int = 200_000
    load_linger: float = 0.03  # s the loader waits for more under light traffic (commit CPU)
    log_level: str = "info"
    # Origins whose pages may POST /submit without a write key (comma-separated; off
    # when empty): the original design's pages sent none.
    submit_origins: str = ""
    # alerts and notifications
    app_name: str = "usertide"
    public_url: str | None = None  # where links in e-mails point; default http://host:port
    admin_emails: str = ""  # comma-separated
    webhook_urls: str = ""  # comma-separated
    webhook_secret: str | None = None  # generated and kept in the data dir when unset
    webhook_allow_private: bool = False
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: str = "starttls"  # starttls | ssl | none
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "usertide <alerts@localhost>"
    smtp_ca_file: Path | None = None
    email_dir: Path | None = None  # write e-mails as .eml files here instead of (or without) SMTP
    notify_users: bool = True
    notify_retry_seconds: float = 2.0  # first retry delay; doubles per attempt (jittered)
    risk_medium: float = 0.5
    population_interval: float = 0.0  # retrain the sign-in population every N s (0: on demand)
    risk_high: float = 0.8
    # Session anomaly: the detector kind (anomaly/detectors.py) and how often it is
    # retrained from the stored sessions (0: only on demand).
    anomaly_detector: str = "isolation_forest"
    session_model_interval: float = 900.0
    # Conversion propensity: the goal event (and an optional property=value), and how
    # often the model retrains from the closed sessions (0: only on demand).
    conversion_goal: str = "Order Completed"
    conversion_filter: str | None = None
    conversion_interval: float = 3600.0
    # A JSON file of user-tag rules (any fields of processors.tags.TagRules; the rest
    # keep their defaults), e.g. {"big_spender_revenue": 200, "lapsed_days": 90}.
    tag_rules: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "usertide.duckdb"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @staticmethod
    def split(value: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in value.split(",") if v.strip())


_ENV: dict[str, str] = {
    "USERTIDE_DATA_DIR": "data_dir",
    "USERTIDE_HOST": "host",
    "USERTIDE_PORT": "port",
    "USERTIDE_ADMIN_KEY": "admin_key",
    "USERTIDE_WRITE_KEY": "write_key",
    "USERTIDE_MAX_EVENT_BYTES": "max_event_bytes",
    "USERTIDE_MAX_BATCH_BYTES": "max_batch_bytes",
    "USERTIDE_RATE_LIMIT_RPS": "rate_limit_rps",
    "USERTIDE_RATE_LIMIT_BURST": "rate_limit_burst",
    "USERTIDE_REC_RATE_LIMIT_RPS": "rec_rate_limit_rps",
    "USERTIDE_REC_RATE_LIMIT_BURST": "rec_rate_limit_burst",
    "USERTIDE_IP_POLICY": "ip_policy",
    "USERTIDE_GEOIP_CITY_DB": "geoip_city_db",
    "USERTIDE_GEOIP_ASN_DB": "geoip_asn_db",
    "USERTIDE_TRUST_FORWARDED_FOR": "trust_forwarded_for",
    "USERTIDE_CHECKPOINT_INTERVAL": "checkpoint_interval",
    "USERTIDE_LOAD_LINGER": "load_linger",
    "USERTIDE_LOG_LEVEL": "log_level",
    "USERTIDE_SUBMIT_ORIGINS": "submit_origins",
    "USERTIDE_APP_NAME": "app_name",
    "USERTIDE_PUBLIC_URL": "public_url",
    "USERTIDE_ADMIN_EMAILS": "admin_emails",
    "USERTIDE_WEBHOOK_URLS": "webhook_urls",
    "USERTIDE_WEBHOOK_SECRET": "webhook_secret",
    "USERTIDE_WEBHOOK_ALLOW_PRIVATE": "webhook_allow_private",
    "USERTIDE_SMTP_HOST": "smtp_host",
    "USERTIDE_SMTP_PORT": "smtp_port",
    "USERTIDE_SMTP_SECURITY": "smtp_security",
    "USERTIDE_SMTP_USERNAME": "smtp_username",
    "USERTIDE_SMTP_PASSWORD": "smtp_password",
    "USERTIDE_SMTP_FROM": "smtp_from",
    "USERTIDE_SMTP_CA_FILE": "smtp_ca_file",
    "USERTIDE_EMAIL_DIR": "email_dir",
    "USERTIDE_NOTIFY_USERS": "notify_users",
    "USERTIDE_RISK_MEDIUM": "risk_medium",
    "USERTIDE_RISK_HIGH": "risk_high",
    "USERTIDE_POPULATION_INTERVAL": "population_interval",
    "USERTIDE_ANOMALY_DETECTOR": "anomaly_detector",
    "USERTIDE_SESSION_MODEL_INTERVAL": "session_model_interval",
    "USERTIDE_CONVERSION_GOAL": "conversion_goal",
    "USERTIDE_CONVERSION_FILTER": "conversion_filter",
    "USERTIDE_CONVERSION_INTERVAL": "conversion_interval",
    "USERTIDE_TAG_RULES": "tag_rules",
}


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment, then explicit overrides (``None`` means unset)."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for var, field in _ENV.items():
        if var in env and env[var] != "":
            raw[field] = env[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    raw = {k: str(v) if isinstance(v, Path) else v for k, v in raw.items()}
    return msgspec.convert(raw, Settings, strict=False, dec_hook=_decode_path)


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot convert {type(value).__name__} to {kind}")
