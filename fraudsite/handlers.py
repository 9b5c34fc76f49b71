"""The WSGI application: requests to the scoring endpoint go through SCORING_MIDDLEWARE, every
other request through MIDDLEWARE. The scoring path is the hot one, and the pages' middleware
(static files, CSRF tokens, messages, frame options, login lockouts) has nothing to do on it."""

from __future__ import annotations

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

# As Django sees PATH_INFO, after any SCRIPT_NAME prefix.
SCORING_PATHS = frozenset({"/detect-fraud", "/detect-fraud/"})


class ScoringHandler(WSGIHandler):
    """Django's handler with the middleware of SCORING_MIDDLEWARE."""

    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE: swapped in only while it is built.
        pages = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.SCORING_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = pages


def application():
    """The site's WSGI callable; sets Django up, as get_wsgi_application() does."""
    django.setup(set_prefix=False)
    pages, scoring = WSGIHandler(), ScoringHandler()

    def serve(environ, start_response):
        handler = scoring if environ.get("PATH_INFO") in SCORING_PATHS else pages
        return handler(environ, start_response)

    return serve
