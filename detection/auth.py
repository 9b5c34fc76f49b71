"""API keys of the scoring API, and the DRF authentication and permissions using them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey

KEY_PREFIX = "fd_"
# Each process keeps a key it found valid for API_KEY_CACHE_SECONDS, saving a query per request: a
# key revoked in another process is refused within that time. prefix -> (row, key's digest, until).
_known: dict[str, tuple[ApiKey, str, float]] = {}


def _digest(key: str) -> str:
    # Keys are long random tokens: a slow password hash would add latency and no safety.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(*, name: str, created_by=None, can_label: bool = False) -> tuple[ApiKey, str]:
    """A new key: (its row, the key itself). The key is not stored and cannot be shown again."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(
        name=name, prefix=prefix, hashed=_digest(key), created_by=created_by, can_label=can_label
    )
    return row, key


def revoke_key(*, prefix: str) -> int:
    """Revoke the key with this prefix: refused by this process at once, by the others within
    API_KEY_CACHE_SECONDS. Returns 1 or 0."""
    _known.pop(prefix, None)
    return ApiKey.objects.usable().filter(prefix=prefix).update(revoked_at=timezone.now())


def client_of(request) -> str:
    """Who sent a request, as Transaction.client records it: "key:<id>", "user:<id>" or ""."""
    key = getattr(request, "auth", None)
    if isinstance(key, ApiKey):
        return f"key:{key.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return ""


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`, looked up on every request."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else request.META.get("HTTP_X_API_KEY", "").strip()
        if not key:
            return None
        prefix = key[len(KEY_PREFIX) :].split("_", 1)[0] if key.startswith(KEY_PREFIX) else ""
        digest = _digest(key)
        known = _known.get(prefix)
        if known is not None and known[2] > time.monotonic() and hmac.compare_digest(known[1], digest):
            return known[0], known[0]
        row = ApiKey.objects.filter(prefix=prefix).first() if prefix else None
        if row is None or not hmac.compare_digest(row.hashed, digest):
            raise exceptions.AuthenticationFailed("the API key is not valid")
        if row.revoked_at is not None:
            _known.pop(prefix, None)
            raise exceptions.AuthenticationFailed("the API key was revoked")
        _known[prefix] = (row, digest, time.monotonic() + settings.API_KEY_CACHE_SECONDS)
        return row, row

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiAccess(permissions.BasePermission):
    """An API key, or a signed-in user with the view's ``session_permission``; anyone while SCORING_API_OPEN."""

    def has_permission(self, request, view):
        if settings.SCORING_API_OPEN or isinstance(request.auth, ApiKey):
            return True
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated("an API key is required: send it as 'Authorization: Bearer <key>'")
        permission = getattr(view, "session_permission", "detection.review_transaction")
        if not request.user.has_perm(permission):
            raise exceptions.PermissionDenied(f"the signed-in user lacks the permission {permission!r}")
        return True


class LabelAccess(permissions.BasePermission):
    """A key made to send labels, or a signed-in analyst; never open, as labels change what the model learns."""

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            if not request.auth.can_label:
                raise exceptions.PermissionDenied("this API key may not send labels: create one with --label")
            return True
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated("an API key with the label permission is required")
        if not request.user.has_perm("detection.review_transaction"):
            raise exceptions.PermissionDenied("the signed-in user lacks the permission 'detection.review_transaction'")
        return True
