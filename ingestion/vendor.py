"""What a helpdesk vendor declares, and all the rest of the service reads generically.

A vendor is a folder under `ingestion/vendors/` whose `__init__.py` defines `VENDOR`, and
one line in the registry (`ingestion/vendors/__init__.py`). From its declaration the
service builds everything else: the settings it reads (its credential variables), the
guard on its routes (its verifiers), its two webhook routes, its part of the OpenAPI
description (its payload schema, `openapi.yaml` beside its code), and the test signers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .tickets import TicketEvent
from .verifiers import LAYOUTS, BasicCredentials, HeaderToken, HmacSignature, TimestampedSignature, Verifier

#: (payload, request headers, account from the URL or None) -> the event, or None for an
#: authentic event that is not about a ticket. Raises InvalidField (422) when unusable.
Normalizer = Callable[[Mapping[str, Any], Mapping[str, str], "str | None"], "TicketEvent | None"]


class VendorSettings(Protocol):
    """What every vendor reads from the service's settings (`config.Settings` is one).
    Declared here, not imported, so that vendors never import the configuration that
    reads their declarations: the import graph has no circle."""

    webhook_timestamp_tolerance: int

    def credential(self, variable: str) -> tuple: ...

    def code_names(self, variable: str) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Credential:
    """One environment variable whose value verifies the vendor's calls, and how.

    `kind` is how the value is written: "secret" (a key, at least 16 characters) or
    "basic" (`user:password`). `scheme` says how a call carries it on the wire, for the
    verifier, the OpenAPI description and the test signers alike:
    - ("hmac", header, digest, encoding, prefix): an HMAC of the raw body, hex or base64,
      sent after `prefix` (`sha1=` for Intercom; the verifier takes it with or without);
    - ("timestamped", header, timestamp header, layout): base64 HMAC-SHA256 of what the
      layout lays out (verifiers.LAYOUTS: Zendesk's timestamp + body, Front's
      `<ms>:<body>`, HubSpot's method + URI + body + ms);
    - ("token", header): the secret itself in a header (Sunshine Conversations' X-API-Key);
    - ("basic",): HTTP Basic.
    """

    variable: str
    kind: str
    scheme: tuple[str, ...]
    #: The variable's former name, still read (with a deprecation warning) when the new
    #: one is unset.
    old_variable: str | None = None

    @property
    def method(self) -> str:
        """How a source names this method (`sources add --method`): hmac, signing or basic."""
        return METHODS[self.scheme[0]]

    def verifier(self, values: tuple, settings: VendorSettings) -> Verifier:
        """`values`: (label, value) pairs; a value is a secret, or a (user, password) pair."""
        name, *parameters = self.scheme
        if name == "hmac":
            header, digest, encoding, _prefix = parameters
            return HmacSignature(header, values, digest, encoding)
        if name == "timestamped":
            header, timestamp_header, layout = parameters
            return TimestampedSignature(header, timestamp_header, values, settings.webhook_timestamp_tolerance,
                                        layout=layout)
        if name == "token":
            return HeaderToken(parameters[0], values)
        return BasicCredentials(values)

    def environment_values(self, settings: VendorSettings) -> tuple:
        """This credential's environment values, labelled (`basic:env`, then the previous)."""
        labels = (f"{self.method}:env", f"{self.method}:env (previous)")
        return tuple(zip(labels, settings.credential(self.variable)))


#: A credential scheme -> the name sources give its method.
METHODS = {"hmac": "hmac", "timestamped": "signing", "token": "token", "basic": "basic"}


def hmac_header(variable: str, header: str, digest: str = "sha256", encoding: str = "hex",
                prefix: str = "") -> Credential:
    return Credential(variable, "secret", ("hmac", header, digest, encoding, prefix))


def timestamped_signature(variable: str, header: str, timestamp_header: str,
                          layout: str = "stamp+body") -> Credential:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown signature layout {layout!r}: one of {sorted(LAYOUTS)}")
    return Credential(variable, "secret", ("timestamped", header, timestamp_header, layout))


def header_token(variable: str, header: str) -> Credential:
    return Credential(variable, "secret", ("token", header))


def basic_auth(variable: str, old_variable: str | None = None) -> Credential:
    return Credential(variable, "basic", ("basic",), old_variable)


#: How a vendor's API takes its credentials: HTTP Basic (`user:password`) or a Bearer token.
API_SCHEMES = ("basic", "bearer")


@dataclass(frozen=True)
class APIAccess:
    """Where and as whom the reconciler calls a vendor's REST API (from the environment)."""

    base_url: str  # no trailing slash; tests, proxies and sandboxes point it elsewhere
    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    #: The account key the vendor's webhooks store tickets under (their URL segment or
    #: account header), so that reconciled tickets are the same tickets. None: found
    #: from the stored tickets (the one account in use, or the ticket's own).
    account: str | None = None
    #: "basic": `Authorization: Basic base64(user:password)` (Zendesk, Freshdesk);
    #: "bearer": `Authorization: Bearer <token>` (an access token, a private-app token).
    scheme: str = "basic"
    token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.scheme not in API_SCHEMES:
            raise ValueError(f"unknown API scheme {self.scheme!r}: one of {API_SCHEMES}")
        if self.scheme == "bearer" and not self.token:
            raise ValueError("a bearer API access needs its token")


@dataclass(frozen=True)
class ExportRequest:
    """One request of a vendor's export, when a path and a query are not enough: a search
    that is a POST with a JSON body (Intercom's, HubSpot's), or a header the vendor wants
    on every call (Intercom-Version). A search is a read all the same: the client paces,
    retries and breaks a POST exactly as a GET."""

    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    #: The JSON body (a POST's), or None.
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, request: "ExportRequest | tuple[str, Mapping[str, str]]") -> "ExportRequest":
        """What `start` and `resume` return, as a request: a (path, query) pair is a GET."""
        if isinstance(request, ExportRequest):
            return request
        path, query = request
        return cls(path, dict(query))


@dataclass(frozen=True)
class ExportPage:
    """One page of a vendor's ticket export, read."""

    tickets: tuple[Mapping[str, Any], ...]
    #: Where the next request starts (opaque: only the vendor's folder reads it).
    cursor: str
    #: The export reached the present: the run stops until the next pass.
    done: bool
    #: The vendor time the export has reached (the last ticket's updated_at), for progress.
    position: datetime | None


@dataclass(frozen=True)
class TicketExport:
    """How a vendor's REST API lists the tickets that changed since a time, page by page
    (`python -m ingestion reconcile` and `backfill`). Pure functions: HTTP, pacing,
    retries and storage are the reconciler's (ingestion/reconcile/)."""

    #: environment -> the API access, or None when the vendor's API is not configured.
    #: Raises errors.CredentialError naming a malformed variable.
    access: Callable[[Mapping[str, str]], APIAccess | None]
    #: The variable holding the API secret (a token, a key): vetted like webhook secrets
    #: (no shipped placeholder, at least 16 characters in production).
    secret_variable: str
    #: The variable that overrides the API's base URL (tests, proxies, sandboxes): named
    #: when production refuses a URL that would carry the secret in clear.
    url_variable: str
    #: since -> the first request: (path, query) of a GET, or an ExportRequest (a POST
    #: search with its JSON body, the vendor's headers).
    start: Callable[[datetime], "ExportRequest | tuple[str, dict[str, str]]"]
    #: stored cursor -> the next request, written the same way.
    resume: Callable[[str], "ExportRequest | tuple[str, dict[str, str]]"]
    #: (the response's JSON, its headers (lower-case names), the cursor the request was
    #: made from or None for `start`'s, the vendor time reached so far in this run or the
    #: run's since, overlap seconds) -> the page. Raises ValueError when the body is not
    #: the export's shape.
    read: Callable[[Any, Mapping[str, str], "str | None", datetime, int], ExportPage]
    #: One exported ticket -> (the body its normalizer reads, its updated_at as sent,
    #: whether the vendor lists it as deleted).
    snapshot: Callable[[Mapping[str, Any]], tuple[Mapping[str, Any], "str | None", bool]]


@dataclass(frozen=True)
class Vendor:
    name: str
    #: How people write the vendor's name ("Help Scout"): the prose that lists vendors
    #: (the OpenAPI description) is written from it.
    title: str
    #: One line for the OpenAPI description and logs.
    summary: str
    #: The vendor's payloads to events.
    normalize: Normalizer
    #: Any one of these that is configured and passes authenticates a call.
    credentials: tuple[Credential, ...]
    #: The folder holding `openapi.yaml`: the JSON schema of the vendor's payloads.
    folder: Path
    #: Public test secrets (a vendor's "test webhook" button signs with one): never accepted
    #: in production.
    public_test_secrets: frozenset[str] = field(default_factory=frozenset)
    #: For a vendor whose normalizer an operator setting tunes (FRESHDESK_STATUS_NAMES):
    #: settings -> the tuned normalizer.
    tuned: Callable[[Any], Normalizer] | None = None
    #: For a vendor that sends several events in one request (HubSpot's array): the
    #: parsed body -> its events, each an object the normalizer reads alone, or None when
    #: the body is one event. Raises InvalidField when an item is not an event. The
    #: events are stored all or none and answered one by one (ingestion/batches.py).
    batch: Callable[[Any], "Sequence[Mapping[str, Any]] | None"] | None = None
    #: For a vendor that validates an endpoint by asking it to echo a value (Front's
    #: `X-Front-Challenge` when an application webhook is saved): request headers ->
    #: the members to add to the `ignored` answer of an authentic call that is not about
    #: a ticket (`{"challenge": "<value>"}`), or None.
    handshake: Callable[[Mapping[str, str]], "Mapping[str, str] | None"] | None = None
    #: Variables an operator sets to name the vendor's codes the account's own way
    #: (`HUBSPOT_STATUS_NAMES=1=new,4=closed`: comma-separated code=name pairs), read
    #: from the environment for every vendor; its `tuned` normalizer gets them from
    #: `settings.code_names(variable)`.
    code_names: tuple[str, ...] = ()
    #: Whether the vendor checks the webhook URL with a HEAD request before it sends
    #: (Intercom will not save a subscription otherwise): HEAD is then answered 200.
    answers_head: bool = False
    #: The header naming the event when the body does not (Help Scout's X-HelpScout-Event):
    #: `python -m ingestion rebuild` hands each stored event's type back in it.
    event_header: str | None = None
    #: The vendor's REST API ticket export, when the reconciler can repair from it.
    export: TicketExport | None = None
    #: (payload, headers) -> the accounts a delivery names itself (Zendesk's
    #: X-Zendesk-Account-Id and body account_id). A delivery may only name the account of
    #: the source it authenticated for (ingestion/sources.py).
    claimed_accounts: Callable[[Mapping[str, Any], Mapping[str, str]], tuple[str, ...]] | None = None
    #: The header naming the account, readable before the body is (Zendesk's): on the bare
    #: URL it picks the account's source before authentication.
    account_header: Callable[[Mapping[str, str]], str | None] | None = None
    #: Whether an account name is written as the vendor's own account id, the form the
    #: claims take (Zendesk's digits). A source named otherwise (`acme`) is bound to the
    #: first id an authentic delivery names, and must be named by it from then on.
    is_account_id: Callable[[str], bool] | None = None

    def normalizer(self, settings: VendorSettings) -> Normalizer:
        return self.tuned(settings) if self.tuned is not None else self.normalize

    def verifiers(self, settings: VendorSettings) -> tuple[Verifier, ...]:
        """The verifiers of the environment's credentials (the vendor's default source)."""
        return tuple(c.verifier(c.environment_values(settings), settings) for c in self.credentials)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(c.method for c in self.credentials)

    def credential_for(self, method: str) -> Credential | None:
        return next((c for c in self.credentials if c.method == method), None)

    @property
    def payload_schema(self) -> str:
        """The vendor's payload schema, as YAML text (see web/openapi.py)."""
        return (self.folder / "openapi.yaml").read_text()
