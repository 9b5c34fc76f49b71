"""Artifacts as a bucket writer or the service could make them: changed, then signed or not."""

from __future__ import annotations

import json
from collections.abc import Callable

from modelops.ml import artifact, signing

KEY = signing.SigningKey(b"the signing key of the ml tests, long enough")


def rewrite(data: bytes, change: Callable[[dict], None], *, key: signing.SigningKey | None = KEY) -> bytes:
    """``data`` with ``change`` applied to its document, signed with ``key`` (None: unsigned)."""
    document = json.loads(data)
    document.pop("signature", None)
    change(document)
    if key is not None:
        document["signature"] = signing.sign(artifact._payload(document), key)
    return artifact._payload(document)
