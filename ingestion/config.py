"""Settings: read once from the environment, validated, then handed around as a value.

Every process (gunicorn master and workers, the relay, the CLI) builds one
`Settings` with `Settings.from_env()`. A bad or missing value raises `ConfigError`
naming the variable; the entry points print that one line and exit, so an operator
never has to read a traceback to find a typo.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Zendesk signs the test requests its webhook builder sends (before a webhook
#: exists) with this published secret. Anyone can sign with it, so production refuses it.
ZENDESK_PUBLIC_TEST_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _bounded(env: Mapping[str, str], name: str, default: float, minimum: float,
             maximum: float | None = None, kind: type = int):
    """A number (`kind` int or float) within bounds; the default when unset or empty."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ConfigError(name, f"must be {noun}, got {raw!r}") from None
    if not (value >= minimum and (maximum is None or value <= maximum)):  # NaN fails too
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(name, f"must be {bounds}, got {raw}")
    return value


def _secret_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated secrets, so an operator can rotate by listing old and new."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _credential_list(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """Comma-separated `user:password` pairs for HTTP Basic auth."""
    pairs = []
    for item in _secret_list(env, name):
        user, colon, password = item.partition(":")
        if not colon or not user or not password:
            # Never echo the value: it is a credential.
            raise ConfigError(name, "each entry must look like user:password (comma-separated for rotation)")
        pairs.append((user, password))
    return tuple(pairs)


def _directory(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if raw and not (os.path.isdir(raw) and os.access(raw, os.W_OK)):
        raise ConfigError(name, f"must be an existing writable directory, got {raw!r}")
    return raw or None


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...], required: bool) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        if required:
            raise ConfigError(name, f"is required (for example {schemes[0]}://user:password@127.0.0.1/ingestion)")
        return None
    scheme = raw.partition("://")[0]
    if scheme not in schemes or "://" not in raw:
        raise ConfigError(name, f"must be a URL starting with one of {', '.join(s + '://' for s in schemes)}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told. Secrets are excluded from repr()."""

    app_env: str = "production"
    database_url: str = field(default="", repr=False)
    redis_url: str | None = field(default=None, repr=False)

    freshdesk_webhook_secret: tuple[str, ...] = field(default=(), repr=False)
    freshdesk_webhook_auth: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    zendesk_webhook_secret: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    zendesk_signing_secret: tuple[str, ...] = field(default=(), repr=False)
    webhook_timestamp_tolerance: int = 300

    rate_limit_per_minute: int = 100
    trusted_proxy_count: int = 0
    circuit_breaker_threshold: int = 5
    circuit_breaker_timeout: int = 30
    redis_timeout: float = 0.25
    duplicate_cache_ttl: int = 3600
    stream_maxlen: int = 100_000

    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    prometheus_multiproc_dir: str | None = None
    relay_metrics_port: int = 0

    db_pool_size: int = 1
    db_pool_timeout: float = 1.5
    db_connect_timeout: int = 2
    db_statement_timeout_ms: int = 5000
    retry_after_seconds: int = 5
    delivery_retention_days: int = 30

    @property
    def development(self) -> bool:
        return self.app_env == "development"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Build and validate settings; raises ConfigError naming the first bad variable."""
        env = os.environ if env is None else env
        app_env = env.get("APP_ENV", "production").strip() or "production"
        if app_env not in ("production", "development"):
            raise ConfigError("APP_ENV", f"must be 'production' or 'development', got {app_env!r}")
        log_level = (env.get("LOG_LEVEL", "INFO").strip() or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")

        zendesk_signing_secret = _secret_list(env, "ZENDESK_SIGNING_SECRET")
        if app_env == "production" and ZENDESK_PUBLIC_TEST_SECRET in zendesk_signing_secret:
            raise ConfigError(
                "ZENDESK_SIGNING_SECRET",
                "is Zendesk's public test secret, which anyone can sign with; use the webhook's own signing secret",
            )

        return cls(
            app_env=app_env,
            database_url=_url(env, "DATABASE_URL", ("postgresql", "postgres"), required=True) or "",
            redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix"), required=False),
            freshdesk_webhook_secret=_secret_list(env, "FRESHDESK_WEBHOOK_SECRET"),
            freshdesk_webhook_auth=_credential_list(env, "FRESHDESK_WEBHOOK_AUTH"),
            zendesk_webhook_secret=_credential_list(env, "ZENDESK_WEBHOOK_SECRET"),
            zendesk_signing_secret=zendesk_signing_secret,
            webhook_timestamp_tolerance=_bounded(env, "WEBHOOK_TIMESTAMP_TOLERANCE", 300, 1, 86400),
            rate_limit_per_minute=_bounded(env, "RATE_LIMIT_PER_MINUTE", 100, 1),
            trusted_proxy_count=_bounded(env, "TRUSTED_PROXY_COUNT", 0, 0, 10),
            circuit_breaker_threshold=_bounded(env, "CIRCUIT_BREAKER_THRESHOLD", 5, 1),
            circuit_breaker_timeout=_bounded(env, "CIRCUIT_BREAKER_TIMEOUT", 30, 1),
            redis_timeout=_bounded(env, "REDIS_TIMEOUT", 0.25, 0.01, kind=float),
            duplicate_cache_ttl=_bounded(env, "DUPLICATE_CACHE_TTL", 3600, 1),
            stream_maxlen=_bounded(env, "STREAM_MAXLEN", 100_000, 1),
            max_body_bytes=_bounded(env, "MAX_BODY_BYTES", 1024 * 1024, 1024),
            log_level=log_level,
            prometheus_multiproc_dir=_directory(env, "PROMETHEUS_MULTIPROC_DIR"),
            relay_metrics_port=_bounded(env, "RELAY_METRICS_PORT", 0, 0, 65535),
            db_pool_size=_bounded(env, "DB_POOL_SIZE", 1, 1, 100),
            db_pool_timeout=_bounded(env, "DB_POOL_TIMEOUT", 1.5, 0.1, kind=float),
            db_connect_timeout=_bounded(env, "DB_CONNECT_TIMEOUT", 2, 1, 60),
            db_statement_timeout_ms=_bounded(env, "DB_STATEMENT_TIMEOUT_MS", 5000, 100),
            retry_after_seconds=_bounded(env, "RETRY_AFTER_SECONDS", 5, 1, 59),
            delivery_retention_days=_bounded(env, "DELIVERY_RETENTION_DAYS", 30, 1),
        )

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **changes)
