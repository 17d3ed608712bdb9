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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any
from urllib.parse import urlsplit

from . import credentials, secret_box
from .errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _bounded(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float,
             kind: type = int):
    """A number (`kind` int or float) within bounds; the default when unset or empty.

    Every number has both bounds: `inf`, `nan` or a value past what its consumer can hold
    (PostgreSQL's statement_timeout is a 32-bit integer) is refused at start rather than
    starting a service that answers 503 forever."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ConfigError(name, f"must be {noun}, got {raw!r}") from None
    if not minimum <= value <= maximum:  # NaN fails too
        raise ConfigError(name, f"must be between {minimum} and {maximum}, got {raw}")
    return value


def _directory(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if raw and not (os.path.isdir(raw) and os.access(raw, os.W_OK)):
        raise ConfigError(name, f"must be an existing writable directory, got {raw!r}")
    return raw or None


def _networks(env: Mapping[str, str], name: str) -> tuple:
    """Comma-separated addresses or CIDR networks."""
    found = []
    for part in env.get(name, "").split(","):
        if part.strip():
            try:
                found.append(ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(name, f"must be comma-separated addresses or networks (CIDR), got {part.strip()!r}") from None
    return tuple(found)


def _status_names(env: Mapping[str, str], name: str) -> dict[int, str]:
    """`6=waiting on customer, 8=monthly`: what an account's own status codes are called."""
    names: dict[int, str] = {}
    for part in env.get(name, "").split(","):
        if not part.strip():
            continue
        code, equals, word = part.partition("=")
        if not equals or not code.strip().isdigit() or not word.strip():
            raise ConfigError(name, f"must be comma-separated code=name pairs (6=waiting on customer), got {part.strip()!r}")
        names[int(code)] = " ".join(word.lower().split())
    return names


def _code_names(env: Mapping[str, str], name: str) -> dict[str, str]:
    """`1=new, 4=closed`: what an account calls a vendor's codes (HubSpot's pipeline stage
    ids are the portal's own), for any vendor that declares such a variable."""
    names: dict[str, str] = {}
    for part in env.get(name, "").split(","):
        if not part.strip():
            continue
        code, equals, word = part.partition("=")
        if not equals or not code.strip() or not word.strip():
            raise ConfigError(name, f"must be comma-separated code=name pairs (4=closed), got {part.strip()!r}")
        names[code.strip()] = " ".join(word.lower().split())
    return names


def _bind(env: Mapping[str, str], name: str, default: str) -> str:
    """host:port, [ipv6]:port or unix:/path: what gunicorn can listen on."""
    raw = env.get(name, "").strip() or default
    if raw.startswith("unix:") and len(raw) > 5:
        return raw
    host, colon, port = raw.rpartition(":")
    if colon and port.isdigit() and 0 < int(port) < 65536 and host and " " not in host:
        return raw
    raise ConfigError(name, f"must be host:port or unix:/path, got {raw!r}")


#: A vendor account as URLs and sources write it (the webhook route's last segment).
ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _account(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if raw and not ACCOUNT.fullmatch(raw):
        raise ConfigError(name, "must be an account as the webhook URL's last segment writes it: letters, digits, "
                                "'.', '_' and '-', at most 100")
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


def _check_cluster_url(url: str | None) -> None:
    """A cluster URL names one node (the client learns the others) and database 0, the
    only one a cluster has: `limits`' `h1:p1,h2:p2` form is not read by redis-py, and a
    wrong one would leave the service degraded for good instead of stopping it here."""
    if not url or "+cluster://" not in url:
        return
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = -1
    if "," in parts.netloc or port == -1 or not parts.hostname:
        raise ConfigError("REDIS_URL", "a cluster URL names one node: redis+cluster://host:6379 (the client finds the others)")
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigError("REDIS_URL", "a Redis Cluster has database 0 only: leave the path out")


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
        database_url = _url(env, "DATABASE_URL", ("postgresql", "postgres"), required=True) or ""
        redis_url = _url(env, "REDIS_URL", ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"),
                         required=False)
        _check_cluster_url(redis_url)
        stream_transport = (env.get("STREAM_TRANSPORT", "").strip() or "redis").lower()
        if stream_transport not in ("redis", "nats"):
            raise ConfigError("STREAM_TRANSPORT", f"must be 'redis' or 'nats', got {stream_transport!r}")
        nats_url = _url(env, "NATS_URL", ("nats", "tls"), required=stream_transport == "nats")
        database_read_url = _url(env, "DATABASE_READ_URL", ("postgresql", "postgres"), required=False)
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
        default_accounts = {vendor.name: _account(env, f"{vendor.name.upper()}_ACCOUNT") for vendor in vendors}
        vendor_apis = credentials.vendor_apis(env, vendors, warnings, production)

        return cls(
            app_env=app_env,
            database_url=database_url,
            database_read_url=database_read_url,
            redis_url=redis_url,
            webhook_credentials=webhook_credentials,
            webhook_timestamp_tolerance=_bounded(env, "WEBHOOK_TIMESTAMP_TOLERANCE", 300, 1, 86400),
            rate_limit_per_minute=_bounded(env, "RATE_LIMIT_PER_MINUTE", 100, 1, 1_000_000_000),
            trusted_proxy_count=_bounded(env, "TRUSTED_PROXY_COUNT", 0, 0, 10),
            circuit_breaker_threshold=_bounded(env, "CIRCUIT_BREAKER_THRESHOLD", 5, 1, 1000),
            circuit_breaker_timeout=_bounded(env, "CIRCUIT_BREAKER_TIMEOUT", 30, 1, 3600),
            # Redis only speeds things up: a call may never stall a worker for long.
            redis_timeout=_bounded(env, "REDIS_TIMEOUT", 0.25, 0.01, 5.0, kind=float),
            duplicate_cache_ttl=_bounded(env, "DUPLICATE_CACHE_TTL", 3600, 1, 7 * 86400),
            stream_maxlen=_bounded(env, "STREAM_MAXLEN", 100_000, 1, 1_000_000_000),
            stream_transport=stream_transport,
            nats_url=nats_url,
            max_body_bytes=_bounded(env, "MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
            log_level=log_level,
            prometheus_multiproc_dir=_directory(env, "PROMETHEUS_MULTIPROC_DIR"),
            relay_metrics_port=_bounded(env, "RELAY_METRICS_PORT", 0, 0, 65535),
            # Development accepts unauthenticated webhooks and serves the read API without
            # tokens: only this machine may reach it unless BIND says otherwise.
            bind=_bind(env, "BIND", "127.0.0.1:8080" if app_env == "development" else "0.0.0.0:8080"),
            metrics_tokens=metrics_tokens,
            metrics_allowed_networks=_networks(env, "METRICS_ALLOWED_NETWORKS"),
            db_pool_size=_bounded(env, "DB_POOL_SIZE", 1, 1, 100),
            # Both stay under the vendors' ~10 s timeout, so a 503 reaches them in time.
            db_pool_timeout=_bounded(env, "DB_POOL_TIMEOUT", 1.5, 0.1, 10.0, kind=float),
            db_connect_timeout=_bounded(env, "DB_CONNECT_TIMEOUT", 2, 1, 30),
            db_statement_timeout_ms=_bounded(env, "DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600_000),
            retry_after_seconds=_bounded(env, "RETRY_AFTER_SECONDS", 5, 1, 59),
            delivery_retention_days=_bounded(env, "DELIVERY_RETENTION_DAYS", 30, 1, 36500),
            event_retention_days=_bounded(env, "EVENT_RETENTION_DAYS", 0, 0, 36500),
            quarantine_max_entries=_bounded(env, "QUARANTINE_MAX_ENTRIES", 10_000, 1, 10_000_000),
            quarantine_retention_days=_bounded(env, "QUARANTINE_RETENTION_DAYS", 30, 1, 36500),
            redelivery_window=_bounded(env, "REDELIVERY_WINDOW", 7200, 60, 7 * 86400),
            freshdesk_status_names=_status_names(env, "FRESHDESK_STATUS_NAMES"),
            vendor_code_names={variable: _code_names(env, variable) for vendor in vendors
                               for variable in getattr(vendor, "code_names", ())},
            api_tokens=api_tokens,
            sources_keys=sources_keys,
            default_accounts={name: account for name, account in default_accounts.items() if account},
            # At most 5 s: the promise that a change reaches every worker within 5 s.
            sources_cache_seconds=_bounded(env, "SOURCES_CACHE_SECONDS", 2.0, 0.0, 5.0, kind=float),
            console_session_key=(credentials.secrets(env, "CONSOLE_SESSION_KEY", warnings, production)
                                 or (None,))[0],
            console_session_minutes=_bounded(env, "CONSOLE_SESSION_MINUTES", 480, 5, 7 * 24 * 60),
            vendor_apis=vendor_apis,
            warnings=tuple(warnings),
            deprecations=tuple(deprecations),
        )

    @property
    def redis_cluster(self) -> bool:
        """REDIS_URL names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`, the
        scheme the `limits` library uses): redis_guard.py then speaks cluster."""
        return bool(self.redis_url) and self.redis_url.split("://", 1)[0].endswith("+cluster")

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **changes)
