"""Webhook credentials from the environment: how they are written, and which are too weak.

Rotation without separators. Each method takes one value in its variable and, while a
rotation is under way, the value being retired in `<VARIABLE>_PREVIOUS`. A secret is
read whole (only surrounding whitespace is dropped), so any printable character can be
part of it: a comma or a space inside a secret never splits it into two keys. A Basic
pair is `user:password`, split at the first colon (RFC 7617 forbids a colon in the
user, and passwords may hold colons).

Strength (strength.py): production refuses to start with a guessable value: a placeholder
shipped in the examples (`.env.example`, `deploy/k8s/secret.example.yaml`), an HMAC or
signing secret or a token shorter than 16 characters, a Basic password shorter than 12 or
equal to its user, a value of a few distinct characters, a short piece repeated, a
keyboard or alphabet run, or one built on a common password. Development starts with a
warning. Refusals name the variable and never echo its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from .strength import MIN_PASSWORD_LENGTH, MIN_SECRET_LENGTH, common, weakness

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
