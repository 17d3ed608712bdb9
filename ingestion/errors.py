"""Every error the service raises, and one shape for those a client sees.

The catalogue, by what the error is about:
- answers (ApiError and its kinds): each carries its HTTP status. Every status is a
  promise to the vendor (README: HTTP interface): 4xx means "this request will never
  succeed, do not retry", 503 with Retry-After means "try again soon";
- configuration (ConfigError, CredentialError): a variable is missing, malformed or weak;
  the entry points print one line naming it and stop;
- dependencies (DatabaseUnavailable, RedisUnavailable, MigrationError);
- vendor APIs, for the reconciler (VendorAPIError and its kinds).
web/error_pages.py renders ApiErrors, Werkzeug's HTTP errors and anything unexpected in
one JSON envelope, `{"error": "..."}`; nothing here knows HTTP beyond a status number.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error the client should see, with its HTTP status."""

    status = 400
    default_message = "Bad request"
    #: Whether an authentic delivery refused with this error is kept in quarantine
    #: (ingestion/quarantine.py): its body was read and authenticated, only not understood.
    quarantined = False
    #: A short label for metrics and the quarantine.
    reason = "bad_request"

    def __init__(self, message: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.headers = headers or {}
        #: More fields of the JSON answer (`quarantine_id`).
        self.extra: dict[str, object] = {}


class BadRequest(ApiError):
    """A request that cannot be used as sent."""

    status = 400


class UnreadableBody(BadRequest):
    """The body is not usable JSON: not UTF-8, not JSON, or not an object."""

    quarantined = True

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PayloadTooLarge(ApiError):
    """A body past MAX_BODY_BYTES, however it is framed (Content-Length or chunked)."""

    status = 413
    default_message = "Request body too large"


class UnsupportedContentEncoding(ApiError):
    """A Content-Encoding the service does not decode (br, zstd, compress, or two stacked):
    415, naming it (RFC 9110 15.5.16), so the sender knows to send it otherwise."""

    status = 415


class UndecodableBody(BadRequest):
    """A body that its Content-Encoding (gzip, deflate) does not decode: truncated or
    corrupt. The request can never succeed as sent."""


class UnsupportedTransferCoding(BadRequest):
    """A transfer coding other than chunked (gzip, deflate...). RFC 9112 suggests 501, but a
    5xx invites a retry and the request can never succeed as sent: 400, as nginx in front
    answers too (deploy/nginx)."""


class Unauthorized(ApiError):
    """Authentication missing or wrong. `reason` is a short label for metrics and logs."""

    status = 401

    def __init__(self, message: str, reason: str, challenge: str | None = None) -> None:
        super().__init__(message, {"WWW-Authenticate": challenge} if challenge else None)
        self.reason = reason


class SourceUnknown(ApiError):
    """A webhook URL naming a vendor account that has no source (ingestion/sources.py).
    Never answered with another source's credentials: a 404, so the sender learns the URL
    is wrong rather than that its secret is."""

    status = 404
    reason = "unknown_source"

    def __init__(self, vendor: str, account: str) -> None:
        super().__init__(f"No source {vendor}/{account}: add it with `python -m ingestion sources add`")


class SourceDisabled(Unauthorized):
    """The source exists and an operator disabled it: nothing it sends is accepted."""

    def __init__(self, vendor: str, account: str) -> None:
        super().__init__(f"Source {vendor}/{account} is disabled", "source_disabled")


class AccountMismatch(ApiError):
    """Authentic for one account, but the delivery names another (Zendesk's
    X-Zendesk-Account-Id or body account_id): a credential writes only into its own
    account, so nothing is stored."""

    status = 403
    reason = "account_mismatch"

    def __init__(self, vendor: str, account: str, claimed: str) -> None:
        shown = account or "(no account)"
        super().__init__(f"The delivery names account {claimed!r}, but it was authenticated for source "
                         f"{vendor}/{shown}: send it to /api/v1/ingest/webhook/{vendor}/{claimed}, "
                         f"whose source holds that account's secret")


class InvalidField(ApiError):
    """The JSON parsed but a field the ticket needs is missing or of the wrong type."""

    status = 422
    quarantined = True
    reason = "invalid_field"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"Field '{field}' {problem}")
        self.field = field
        self.problem = problem


class TooDeeplyNested(ApiError):
    """JSON nested past json_body.MAX_NESTING levels: authentic perhaps, but no helpdesk
    sends that, and deeper structures crash recursive readers (the JSON libraries, the
    database's JSON functions). Refused before anything parses it, and quarantined."""

    status = 422
    quarantined = True
    reason = "too_deep"


class UnstorablePayload(ApiError):
    """PostgreSQL refused a value in the payload (for example a \\u0000 escape in JSONB)."""

    status = 422
    quarantined = True
    reason = "unstorable"


class TokenRequired(ApiError):
    """A call to the read API (or the quarantine API) without one of API_TOKENS."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


class OperatorUnauthorized(ApiError):
    """/metrics or /openapi.yaml without METRICS_TOKEN, when one is configured."""

    status = 401

    def __init__(self) -> None:
        super().__init__("A bearer token is required", headers={"WWW-Authenticate": 'Bearer realm="operator"'})


class OperatorForbidden(ApiError):
    """/metrics or /openapi.yaml from outside METRICS_ALLOWED_NETWORKS."""

    status = 403
    default_message = "Not allowed from this address"


class TicketNotFound(ApiError):
    status = 404
    default_message = "Ticket not found"


class EntryNotFound(ApiError):
    status = 404
    default_message = "Quarantine entry not found"


class RateLimited(ApiError):
    """Past RATE_LIMIT_PER_MINUTE for this client: Retry-After says when to come back."""

    status = 429
    default_message = "Rate limit exceeded. Please try again later."


class ServiceUnavailable(ApiError):
    """A dependency we cannot work without (the database) is down: retry soon.

    Retry-After stays under 60 s because Zendesk only honours shorter ones.
    """

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL cannot be reached in time; nothing was stored, the vendor should retry."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Database unavailable, please retry later", retry_after)


class SchemaMissing(DatabaseUnavailable):
    """The database answers but lacks this release's schema (a wrong database in
    DATABASE_URL, or `migrate` not run): still a 503, since the webhooks can be stored
    once it is migrated, but saying so, where "unavailable" sent operators to the network."""

    def __init__(self, retry_after: int) -> None:
        ServiceUnavailable.__init__(
            self, "The database has no schema for this release: run `python -m ingestion migrate`", retry_after)


# --- configuration ---------------------------------------------------------------------
class ConfigError(ValueError):
    """A configuration variable is missing or malformed; carries the variable's name."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class CredentialError(ConfigError):
    """A credential variable is malformed or too weak (never quoting its value)."""


class SourcesKeyError(ConfigError):
    """SOURCES_ENCRYPTION_KEY is missing where sources hold secrets, malformed, or cannot
    decrypt what is stored (never quoting a key or a secret)."""

    def __init__(self, problem: str) -> None:
        super().__init__("SOURCES_ENCRYPTION_KEY", problem)


# --- dependencies ------------------------------------------------------------------------
class RedisUnavailable(Exception):
    """Redis could not be used for this call (down, hung, or the breaker is open)."""


class StreamUnavailable(Exception):
    """The stream transport (Redis or NATS JetStream) did not take a batch: the relay keeps
    the events pending and tries again (ingestion/stream)."""


class MigrationError(RuntimeError):
    """A migration could not be applied (its lock was not granted in time, or it failed)."""


# --- vendor APIs (the reconciler) ---------------------------------------------------------
class VendorAPIError(Exception):
    """The vendor's API could not give this page now; `status` says why (for metrics)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class TransientError(VendorAPIError):
    """Worth retrying: 5xx, timeout, connection, a body that is not JSON."""


class RefusedError(VendorAPIError):
    """Not worth retrying: the vendor refuses the request as configured (401, 403, 404...)."""


class Stopped(VendorAPIError):
    """The process is stopping (SIGTERM): a wait was cut short; the run ends where it is."""


class BreakerOpen(VendorAPIError):
    """The breaker is open: no call is made until it half-opens."""


class Throttled(Exception):
    """A 429 from a vendor API: wait `seconds`. Not a failure for the breaker."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class BadFilter(ValueError):
    """A console filter value the page cannot use: shown as a message, never a 500."""


class NumbersTooLong(ValueError):
    """A JSON body whose numbers would be stored far longer than it is
    (json_body.NUMBER_GROWTH_SLACK)."""
