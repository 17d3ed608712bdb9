"""Webhook credentials from the environment: how they are written, and which are too weak.

Why it works this way: docs/design.md, "Credentials".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import ip_address
from typing import Any, Protocol
from urllib.parse import urlsplit

from .errors import CredentialError
from .strength import MIN_PASSWORD_LENGTH, MIN_SECRET_LENGTH, common, weakness

PREVIOUS_SUFFIX = "_PREVIOUS"


def _values(env: Mapping[str, str], name: str) -> list[tuple[str, str]]:
    """(variable, value) for the current and the previous value, when set."""
    found = []
    for variable in (name, name + PREVIOUS_SUFFIX):
        value = env.get(variable, "").strip()
        if value:
            found.append((variable, value))
    return found


def _judge(variable: str, problem: str | None, warnings: list[str], production: bool) -> None:
    """A weak value: production refuses it, development starts with a warning."""
    if problem:
        if production:
            raise CredentialError(variable, problem)
        warnings.append(f"{variable} {problem}")


def secrets(env: Mapping[str, str], name: str, warnings: list[str], production: bool,
            refused: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """HMAC or signing secrets: the current one, then the previous one during a rotation.
    `refused`: public test secrets of the vendor (anyone can sign with them)."""
    keys = []
    for variable, value in _values(env, name):
        _judge(variable, weakness(value, MIN_SECRET_LENGTH, refused), warnings, production)
        keys.append(value)
    return tuple(keys)


def basic_pairs(env: Mapping[str, str], name: str, warnings: list[str],
                production: bool) -> tuple[tuple[str, str], ...]:
    """`user:password` pairs for HTTP Basic: the current one, then the previous one."""
    pairs = []
    for variable, value in _values(env, name):
        user, colon, password = value.partition(":")
        if not colon or not user or not password:
            raise CredentialError(variable, "must look like user:password")
        problem = weakness(password, MIN_PASSWORD_LENGTH)
        if problem is None and password.lower() == user.lower():
            problem = "is the user name"
        _judge(variable, f"has a password that {problem}" if problem else None, warnings, production)
        pairs.append((user, password))
    return tuple(pairs)


def check_url_password(variable: str, url: str | None, warnings: list[str], production: bool) -> None:
    """A database or Redis URL whose password is among the first guesses (`ingestion`,
    `postgres`, `change-me`, the user name). Nothing more: the server's own policy governs
    length, and a URL without a password (peer or certificate authentication) is fine."""
    try:
        parts = urlsplit(url) if url else None
        password, user = (parts.password, parts.username) if parts else (None, None)
    except ValueError:
        password = user = None
    if not password:
        return
    problem = common(password)
    if problem is None and user and password.lower() == user.lower():
        problem = "is the user name"
    _judge(variable, f"has a password that {problem}" if problem else None, warnings, production)


def token_list(env: Mapping[str, str], name: str, warnings: list[str], production: bool) -> tuple[str, ...]:
    """Bearer tokens, separated by commas or whitespace. Unlike webhook secrets (which a
    vendor's admin screen may impose) these are generated for the purpose, so a separator
    that cannot occur in them is fine: generate them with `openssl rand -hex 32`."""
    tokens = tuple(dict.fromkeys(env.get(name, "").replace(",", " ").split()))
    for token in tokens:
        problem = weakness(token, MIN_SECRET_LENGTH)
        _judge(name, f"holds a token that {problem}" if problem else None, warnings, production)
    return tokens


def scoped_tokens(env: Mapping[str, str], name: str, warnings: list[str], production: bool,
                  vendors: list[str]) -> tuple[tuple[str, tuple[str, str] | None], ...]:
    """API_TOKENS: bearer tokens, each reading every account, or, written
    `token@vendor/account`, that account only (the read API, the quarantine API)."""
    scoped = []
    for entry in token_list(env, name, [], False):
        token, at, scope = entry.rpartition("@") if "@" in entry else (entry, "", "")
        where = None
        if at:
            vendor, slash, account = scope.partition("/")
            if not slash or vendor not in vendors or not account:
                raise CredentialError(name, f"an entry's scope must be @<vendor>/<account> with a vendor among "
                                            f"{', '.join(vendors)}")
            where = (vendor, account)
        problem = weakness(token, MIN_SECRET_LENGTH)
        _judge(name, f"holds a token that {problem}" if problem else None, warnings, production)
        scoped.append((token, where))
    return tuple(scoped)


class DeclaresVariables(Protocol):
    """What a vendor declares that the settings read (ingestion/vendor.py's Vendor is
    one). Declared here, never imported: configuration sits below the vendors, which the
    entry points hand in (ingestion.vendors.load_settings)."""

    name: str
    #: Each with `.variable` and `.kind` ("secret" or "basic").
    credentials: tuple[Any, ...]
    public_test_secrets: frozenset[str]
    #: None, or with `.access(env)`, `.secret_variable` and `.url_variable`.
    export: Any
    #: Variables of code=name pairs (HUBSPOT_STATUS_NAMES).
    code_names: tuple[str, ...]


def webhook_credentials(env: Mapping[str, str], vendors: Iterable[DeclaresVariables], warnings: list[str],
                         production: bool, deprecations: list[str]) -> dict[str, tuple]:
    """Every credential variable the vendors declare, read and vetted (credentials.py)."""
    found: dict[str, tuple] = {}
    for vendor in vendors:
        for credential in vendor.credentials:
            source, view = credential.variable, env
            old = getattr(credential, "old_variable", None)
            if old:
                source, view = _renamed(env, credential.variable, old, deprecations)
            if credential.kind == "basic":
                found[credential.variable] = basic_pairs(view, source, warnings, production)
            else:
                found[credential.variable] = secrets(view, source, warnings, production,
                                                                 refused=vendor.public_test_secrets)
    return found


def _renamed(env: Mapping[str, str], new: str, old: str, deprecations: list[str]) -> tuple[str, Mapping[str, str]]:
    """(the variable to read, the environment to read it in) for a credential renamed from
    `old`: the new name when its current value is set (the old names then ignored, said),
    else the old one (refusals name the variable the operator set), its previous value
    taken from either name. A value under one name is never dropped without a word."""
    def has(name: str) -> bool:
        return bool(env.get(name, "").strip())

    if has(new):
        deprecations.extend(f"{name} is ignored, as {new} is set: remove it (or move its value to "
                            f"{new}{name[len(old):]})" for name in (old, f"{old}_PREVIOUS") if has(name))
        return new, env
    if has(old):
        deprecations.append(f"{old} is read as {new}, its new name: rename it")
        if has(f"{new}_PREVIOUS") and not has(f"{old}_PREVIOUS"):  # half renamed: both halves read
            return old, {**env, f"{old}_PREVIOUS": env[f"{new}_PREVIOUS"]}
        if has(f"{new}_PREVIOUS"):
            deprecations.append(f"{new}_PREVIOUS is ignored, as {old} and {old}_PREVIOUS are read: rename both")
        return old, env
    if has(f"{old}_PREVIOUS") and not has(f"{new}_PREVIOUS"):
        deprecations.append(f"{old}_PREVIOUS is read as {new}_PREVIOUS, its new name: rename it")
        return new, {**env, f"{new}_PREVIOUS": env[f"{old}_PREVIOUS"]}
    if has(f"{old}_PREVIOUS"):
        deprecations.append(f"{old}_PREVIOUS is ignored, as {new}_PREVIOUS is set: remove it")
    return new, env


def vendor_apis(env: Mapping[str, str], vendors: Iterable[DeclaresVariables], warnings: list[str],
                 production: bool) -> dict[str, Any]:
    """Each vendor's REST API access for the reconciler (its export.py reads its own
    variables), the secret vetted like a webhook secret. Read by every process, so a
    shipped placeholder stops the whole deployment, not only the reconciler; development
    starts with a warning and leaves a half-configured vendor unreconciled."""
    found: dict[str, Any] = {}
    for vendor in vendors:
        if vendor.export is None:
            continue
        secrets(env, vendor.export.secret_variable, warnings, production)
        try:
            access = vendor.export.access(env)
        except CredentialError as error:
            if production:
                raise
            warnings.append(f"{error.variable} {error.problem}; {vendor.name} is not reconciled")
            continue
        if access is not None:
            _judge_api_url(vendor.export.url_variable, access.base_url, warnings, production)
            found[vendor.name] = access
    return found


def _judge_api_url(variable: str, url: str, warnings: list[str], production: bool) -> None:
    """A vendor API called over plain HTTP sends its key in clear: production takes https
    only, or http to a loopback address (an egress proxy on the same host, a test server)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or parts.hostname == "localhost":
        return
    try:
        if ip_address(parts.hostname or "").is_loopback:
            return
    except ValueError:
        pass
    problem = "must be an https:// URL: over http the API key would travel in clear"
    if production:
        raise CredentialError(variable, problem)
    warnings.append(f"{variable} {problem}")
