"""Who may open the HTML pages: one decorator for every app's views."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required


def requires(permission: str):
    """Signed in (else the sign-in page) and holding ``permission`` (else 403)."""

    def decorate(view):
        return login_required(permission_required(permission, raise_exception=True)(view))

    return decorate
