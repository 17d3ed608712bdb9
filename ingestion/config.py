"""Settings: read once from the environment, validated, then handed around as a value.

Every process (gunicorn master and workers, the relay, the CLI) builds one
`Settings` with `ingestion.vendors.load_settings()` (`Settings.from_env()` with the
registered vendors' variables: this module imports nothing of the vendors, or of anything
above it). A bad or missing value raises `ConfigError`
naming the variable; the entry points print that one line and exit, so an operator
never has to read a traceback to find a typo.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import credentials, secret_box
from . import variables as var
from .errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told. Secrets are excluded from repr()."""

    app_env: str = "production"
    database_url: str = field(default="", repr=False)
    #: A streaming replica for display-only reads (storage/replica.py); None: the primary.
    database_read_url: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)

    #: Webhook credentials by variable (those the vendors declare): secrets, or
    #: (user, password) pairs; the current value, then the previous one during a rotation.
    webhook_credentials: Mapping[str, tuple] = field(default_factory=dict, repr=False)
    webhook_timestamp_tolerance: int = 300

    rate_limit_per_minute: int = 100
    trusted_proxy_count: int = 0
    circuit_breaker_threshold: int = 5
    circuit_breaker_timeout: int = 30
    redis_timeout: float = 0.25
    duplicate_cache_ttl: int = 3600
    stream_maxlen: int = 100_000
    #: Where the relay publishes: "redis" (the stream ingestion:tickets) or "nats" (JetStream).
    stream_transport: str = "redis"
    nats_url: str | None = field(default=None, repr=False)

    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    prometheus_multiproc_dir: str | None = None
    relay_metrics_port: int = 0
    bind: str = "0.0.0.0:8080"
    metrics_tokens: tuple[str, ...] = field(default=(), repr=False)
    metrics_allowed_networks: tuple = ()

    db_pool_size: int = 1
    db_pool_timeout: float = 1.5
    db_connect_timeout: int = 2
    db_statement_timeout_ms: int = 5000
    retry_after_seconds: int = 5
    delivery_retention_days: int = 30
    #: Quarantine bounds: entries past the newest QUARANTINE_MAX_ENTRIES are evicted
    #: (oldest first), entries older than QUARANTINE_RETENTION_DAYS pruned.
    #: Personal data of events (raw payload, comment, changes) is removed past this many
    #: days; 0 keeps it for ever (the default: events are the history).
    event_retention_days: int = 0
    quarantine_max_entries: int = 10_000
    quarantine_retention_days: int = 30
    #: An identical body without a vendor event id is a redelivery within this many
    #: seconds (the vendors' retry horizon: Freshdesk retries for about 95 minutes).
    redelivery_window: int = 7200
    freshdesk_status_names: Mapping[int, str] = field(default_factory=dict)
    #: variable -> code -> name, for the variables vendors declare in `code_names`
    #: (HUBSPOT_STATUS_NAMES): an account's own names for a vendor's codes.
    vendor_code_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Bearer tokens of the read API, each with the (vendor, account) it may read, or None
    #: for every account (`token@zendesk/4242` in API_TOKENS).
    api_tokens: tuple[tuple[str, tuple[str, str] | None], ...] = field(default=(), repr=False)
    #: SOURCES_ENCRYPTION_KEY's Fernet keys (the first encrypts; all decrypt).
    sources_keys: tuple[str, ...] = field(default=(), repr=False)
    #: vendor -> the account of its default source (`<VENDOR>_ACCOUNT`), when pinned.
    default_accounts: Mapping[str, str] = field(default_factory=dict)
    #: How long a worker trusts what it read of a source: changes reach every worker within it.
    sources_cache_seconds: float = 2.0
    #: CONSOLE_SESSION_KEY: signs the console's session cookie; None derives one from
    #: API_TOKENS (web/console/access.py). CONSOLE_SESSION_MINUTES: a session's life.
    console_session_key: str | None = field(default=None, repr=False)
    console_session_minutes: int = 480
    #: vendor name -> vendor.APIAccess: where and as whom the reconciler calls its REST
    #: API (only the vendors whose API is configured).
    vendor_apis: Mapping[str, Any] = field(default_factory=dict, repr=False)

    #: Weak credentials tolerated in development, said once at start (never the values).
    warnings: tuple[str, ...] = ()
    #: Variables read under an old name, said once at start.
    deprecations: tuple[str, ...] = ()

    @property
    def development(self) -> bool:
        return self.app_env == "development"

    def code_names(self, variable: str) -> Mapping[str, str]:
        """An account's own names for a vendor's codes (a variable a vendor declares)."""
        return self.vendor_code_names.get(variable, {})

    def credential(self, variable: str) -> tuple:
        """The values of one credential variable (empty when not configured)."""
        return self.webhook_credentials.get(variable, ())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 vendors: Iterable[credentials.DeclaresVariables] = ()) -> "Settings":
        """Build and validate settings, with the variables `vendors` declare (the entry
        points pass the registry: ingestion.vendors.load_settings); raises ConfigError
        naming the first bad variable."""
        env = os.environ if env is None else env
        vendors = tuple(vendors)
        app_env = env.get("APP_ENV", "production").strip() or "production"
        if app_env not in ("production", "development"):
            raise ConfigError("APP_ENV", f"must be 'production' or 'development', got {app_env!r}")
        production = app_env == "production"
        log_level = (env.get("LOG_LEVEL", "INFO").strip() or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")

        warnings: list[str] = []  # (a CredentialError is a ConfigError: it names its variable)
        database_url = var.url(env, "DATABASE_URL", ("postgresql", "postgres"), required=True) or ""
        redis_url = var.url(env, "REDIS_URL", ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"),
                         required=False)
        stream_transport = (env.get("STREAM_TRANSPORT", "").strip() or "redis").lower()
        if stream_transport not in ("redis", "nats"):
            raise ConfigError("STREAM_TRANSPORT", f"must be 'redis' or 'nats', got {stream_transport!r}")
        nats_url = var.url(env, "NATS_URL", ("nats", "tls"), required=stream_transport == "nats")
        database_read_url = var.url(env, "DATABASE_READ_URL", ("postgresql", "postgres"), required=False)
        credentials.check_url_password("DATABASE_URL", database_url, warnings, production)
        credentials.check_url_password("DATABASE_READ_URL", database_read_url, warnings, production)
        credentials.check_url_password("REDIS_URL", redis_url, warnings, production)
        credentials.check_url_password("NATS_URL", nats_url, warnings, production)
        deprecations: list[str] = []
        webhook_credentials = credentials.webhook_credentials(env, vendors, warnings, production, deprecations)
        metrics_tokens = credentials.secrets(env, "METRICS_TOKEN", warnings, production)
        api_tokens = credentials.scoped_tokens(env, "API_TOKENS", warnings, production,
                                               [vendor.name for vendor in vendors])
        sources_keys = secret_box.parse_keys(env.get("SOURCES_ENCRYPTION_KEY", ""))
        default_accounts = {vendor.name: var.account(env, f"{vendor.name.upper()}_ACCOUNT") for vendor in vendors}
        vendor_apis = credentials.vendor_apis(env, vendors, warnings, production)

        return cls(
            app_env=app_env,
            database_url=database_url,
            database_read_url=database_read_url,
            redis_url=redis_url,
            webhook_credentials=webhook_credentials,
            webhook_timestamp_tolerance=var.number(env, "WEBHOOK_TIMESTAMP_TOLERANCE", 300, 1, 86400),
            rate_limit_per_minute=var.number(env, "RATE_LIMIT_PER_MINUTE", 100, 1, 1_000_000_000),
            trusted_proxy_count=var.number(env, "TRUSTED_PROXY_COUNT", 0, 0, 10),
            circuit_breaker_threshold=var.number(env, "CIRCUIT_BREAKER_THRESHOLD", 5, 1, 1000),
            circuit_breaker_timeout=var.number(env, "CIRCUIT_BREAKER_TIMEOUT", 30, 1, 3600),
            # Redis only speeds things up: a call may never stall a worker for long.
            redis_timeout=var.number(env, "REDIS_TIMEOUT", 0.25, 0.01, 5.0, kind=float),
            duplicate_cache_ttl=var.number(env, "DUPLICATE_CACHE_TTL", 3600, 1, 7 * 86400),
            stream_maxlen=var.number(env, "STREAM_MAXLEN", 100_000, 1, 1_000_000_000),
            stream_transport=stream_transport,
            nats_url=nats_url,
            max_body_bytes=var.number(env, "MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
            log_level=log_level,
            prometheus_multiproc_dir=var.directory(env, "PROMETHEUS_MULTIPROC_DIR"),
            relay_metrics_port=var.number(env, "RELAY_METRICS_PORT", 0, 0, 65535),
            # Development accepts unauthenticated webhooks and serves the read API without
            # tokens: only this machine may reach it unless BIND says otherwise.
            bind=var.bind(env, "BIND", "127.0.0.1:8080" if app_env == "development" else "0.0.0.0:8080"),
            metrics_tokens=metrics_tokens,
            metrics_allowed_networks=var.networks(env, "METRICS_ALLOWED_NETWORKS"),
            db_pool_size=var.number(env, "DB_POOL_SIZE", 1, 1, 100),
            # Both stay under the vendors' ~10 s timeout, so a 503 reaches them in time.
            db_pool_timeout=var.number(env, "DB_POOL_TIMEOUT", 1.5, 0.1, 10.0, kind=float),
            db_connect_timeout=var.number(env, "DB_CONNECT_TIMEOUT", 2, 1, 30),
            db_statement_timeout_ms=var.number(env, "DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600_000),
            retry_after_seconds=var.number(env, "RETRY_AFTER_SECONDS", 5, 1, 59),
            delivery_retention_days=var.number(env, "DELIVERY_RETENTION_DAYS", 30, 1, 36500),
            event_retention_days=var.number(env, "EVENT_RETENTION_DAYS", 0, 0, 36500),
            quarantine_max_entries=var.number(env, "QUARANTINE_MAX_ENTRIES", 10_000, 1, 10_000_000),
            quarantine_retention_days=var.number(env, "QUARANTINE_RETENTION_DAYS", 30, 1, 36500),
            redelivery_window=var.number(env, "REDELIVERY_WINDOW", 7200, 60, 7 * 86400),
            freshdesk_status_names=var.status_names(env, "FRESHDESK_STATUS_NAMES"),
            vendor_code_names={variable: var.code_names(env, variable) for vendor in vendors
                               for variable in getattr(vendor, "code_names", ())},
            api_tokens=api_tokens,
            sources_keys=sources_keys,
            default_accounts={name: account for name, account in default_accounts.items() if account},
            # At most 5 s: the promise that a change reaches every worker within 5 s.
            sources_cache_seconds=var.number(env, "SOURCES_CACHE_SECONDS", 2.0, 0.0, 5.0, kind=float),
            console_session_key=(credentials.secrets(env, "CONSOLE_SESSION_KEY", warnings, production)
                                 or (None,))[0],
            console_session_minutes=var.number(env, "CONSOLE_SESSION_MINUTES", 480, 5, 7 * 24 * 60),
            vendor_apis=vendor_apis,
            warnings=tuple(warnings),
            deprecations=tuple(deprecations),
        )

    @property
    def redis_cluster(self) -> bool:
        """REDIS_URL names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`, the
        scheme the `limits` library uses): redis_guard.py then speaks cluster."""
        return bool(self.redis_url) and self.redis_url.split("://", 1)[0].endswith("+cluster")

    @property
    def has_stream(self) -> bool:
        """Whether a relay can publish (NATS, or Redis with REDIS_URL): without one, no
        event is ever marked published, and retention must not wait for it."""
        return self.stream_transport == "nats" or bool(self.redis_url)

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **changes)
