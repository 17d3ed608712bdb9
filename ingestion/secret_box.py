"""Sources' secrets at rest: encrypted with `cryptography`'s Fernet under SOURCES_ENCRYPTION_KEY.

The variable holds one Fernet key (`python -m ingestion sources new-key` prints one), or
several separated by commas while the key itself is rotated: the first encrypts, every
one decrypts (MultiFernet), and `python -m ingestion sources rewrap` re-encrypts what is
stored under the first. Fernet authenticates what it decrypts, so a wrong key is an
error, never garbage taken for a secret.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import SourcesKeyError


def parse_keys(raw: str) -> tuple[str, ...]:
    """The keys of SOURCES_ENCRYPTION_KEY (empty: none), each checked to be a Fernet key."""
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise SourcesKeyError(f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                                  "`python -m ingestion sources new-key` makes one)") from None
    return keys


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Encrypts and decrypts sources' secrets; built from SOURCES_ENCRYPTION_KEY's keys."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @property
    def ready(self) -> bool:
        return self._fernet is not None

    def _box(self) -> MultiFernet:
        if self._fernet is None:
            raise SourcesKeyError("is not set: sources' secrets are stored encrypted under it "
                                  "(`python -m ingestion sources new-key` makes one)")
        return self._fernet

    def seal(self, secret: str) -> bytes:
        return self._box().encrypt(secret.encode("utf-8"))

    def open(self, token: bytes, where: str) -> str:
        """The secret in `token`; `where` names its source and credential in the error."""
        try:
            return self._box().decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise SourcesKeyError(f"cannot decrypt the stored secret of {where}: the key is not the one it "
                                  "was stored under (while rotating the key, list the new key first and "
                                  "keep the old one after it)") from None

    def rewrap(self, token: bytes) -> bytes:
        """The same secret, encrypted under the first key."""
        try:
            return self._box().rotate(bytes(token))
        except InvalidToken:
            raise SourcesKeyError("cannot decrypt a stored secret with any of its keys") from None
