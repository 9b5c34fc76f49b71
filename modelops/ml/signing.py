"""HMAC-SHA256 signatures of model artifacts, with keys that never live in the models storage.

Whoever can write the bucket can compute a sha256, not a signature: a planted or altered artifact
is refused even by a database that has never seen it."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

ALGORITHM = "hmac-sha256"
# Shorter secrets are refused: the key must not be guessable from its signatures.
MIN_SECRET_LENGTH = 32


class SignatureError(Exception):
    """The artifact is unsigned, signed with an unknown key, or its signature does not match."""


@dataclass(frozen=True)
class SigningKey:
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"an artifact signing key must be at least {MIN_SECRET_LENGTH} characters")

    @property
    def id(self) -> str:
        """A name that reveals nothing of the key, recorded with each signature so keys can rotate."""
        return hashlib.sha256(b"fraud-model artifact key\0" + self.secret).hexdigest()[:16]

    def digest(self, payload: bytes) -> str:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()


def sign(payload: bytes, key: SigningKey) -> dict[str, str]:
    return {"algorithm": ALGORITHM, "key_id": key.id, "hmac": key.digest(payload)}


def verify(payload: bytes, signature: object, keys: Sequence[SigningKey]) -> str:
    """The id of the key that signed ``payload``; SignatureError if none of ``keys`` did."""
    if signature is None:
        raise SignatureError(
            "the artifact is unsigned (stored before signing: `manage.py adopt_model --allow-unsigned` signs it)"
        )
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        raise SignatureError(f"the artifact's signature is not {ALGORITHM}")
    key_id, given = signature.get("key_id"), signature.get("hmac")
    if not isinstance(key_id, str) or not isinstance(given, str):
        raise SignatureError("the artifact's signature names no key or holds no digest")
    key = next((k for k in keys if k.id == key_id), None)
    if key is None:
        raise SignatureError(f"the artifact is signed with key {key_id[:16]!r}, which this service does not hold")
    if not hmac.compare_digest(key.digest(payload), given):
        raise SignatureError(f"the artifact's signature (key {key_id}) does not match its content")
    return key_id
