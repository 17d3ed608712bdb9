"""Webhook credentials from the environment: how they are written, and which are too weak.

Rotation without separators. Each method takes one value in its variable and, while a
rotation is under way, the value being retired in `<VARIABLE>_PREVIOUS`. A secret is
read whole (only surrounding whitespace is dropped), so any printable character can be
part of it: a comma or a space inside a secret never splits it into two keys. A Basic
pair is `user:password`, split at the first colon (RFC 7617 forbids a colon in the
user, and passwords may hold colons).

Strength. Production refuses to start with a placeholder shipped in the examples
(`.env.example`, `deploy/k8s/secret.example.yaml`), an HMAC or signing secret shorter
than 16 characters, or a Basic password shorter than 12; development starts with a
warning. Refusals name the variable and never echo its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

#: Values the examples ship with, and their usual variants. Each is public, so accepting
#: one means accepting anybody.
PLACEHOLDERS = frozenset({"change-me", "change-me-too", "changeme", "change_me", "replace-me", "secret",
                          "password", "xxx", "todo"})

MIN_SECRET_LENGTH = 16
MIN_PASSWORD_LENGTH = 12
PREVIOUS_SUFFIX = "_PREVIOUS"


class CredentialError(ValueError):
    """A credential variable is malformed or too weak; carries the variable's name."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(problem)
        self.variable = variable
        self.problem = problem


def _values(env: Mapping[str, str], name: str) -> list[tuple[str, str]]:
    """(variable, value) for the current and the previous value, when set."""
    found = []
    for variable in (name, name + PREVIOUS_SUFFIX):
        value = env.get(variable, "").strip()
        if value:
            found.append((variable, value))
    return found


def _is_placeholder(value: str) -> bool:
    return value.lower() in PLACEHOLDERS


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
        problem = None
        if _is_placeholder(value) or value in refused:
            problem = "is a public placeholder or test value; use a random secret"
        elif len(value) < MIN_SECRET_LENGTH:
            problem = f"is shorter than {MIN_SECRET_LENGTH} characters; use a random secret"
        _judge(variable, problem, warnings, production)
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
        problem = None
        if _is_placeholder(password) or _is_placeholder(value):
            problem = "has a public placeholder password; use a random one"
        elif len(password) < MIN_PASSWORD_LENGTH:
            problem = f"has a password shorter than {MIN_PASSWORD_LENGTH} characters; use a random one"
        _judge(variable, problem, warnings, production)
        pairs.append((user, password))
    return tuple(pairs)


def check_url_password(variable: str, url: str | None, warnings: list[str], production: bool) -> None:
    """A database or Redis URL whose password is an example placeholder."""
    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        password = None
    if password and _is_placeholder(password):
        _judge(variable, "has a public placeholder password; use the real one", warnings, production)


def token_list(env: Mapping[str, str], name: str, warnings: list[str], production: bool) -> tuple[str, ...]:
    """Bearer tokens, separated by commas or whitespace. Unlike webhook secrets (which a
    vendor's admin screen may impose) these are generated for the purpose, so a separator
    that cannot occur in them is fine: generate them with `openssl rand -hex 32`."""
    tokens = tuple(dict.fromkeys(env.get(name, "").replace(",", " ").split()))
    for token in tokens:
        problem = None
        if _is_placeholder(token):
            problem = "holds a public placeholder; generate random tokens"
        elif len(token) < MIN_SECRET_LENGTH:
            problem = f"holds a token shorter than {MIN_SECRET_LENGTH} characters"
        _judge(name, problem, warnings, production)
    return tokens
