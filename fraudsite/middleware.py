"""Request ids and one structured log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.encoding import escape_uri_path

from common import metrics
from common.errors import database_unavailable, server_error

log = logging.getLogger("fraudsite.requests")
# A caller's id is kept if it looks like one, so logs join across systems; else never echoed.
_CALLER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_API_PREFIXES = ("/detect-fraud", "/api/")
_ANSWERED_BY_DJANGO = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)


class RequestLogMiddleware:
    """Gives each request an id (its X-Request-ID, or a new one) and logs one line per request; an
    unhandled error on an API path answers JSON with the id, its traceback only in the log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request.id = supplied if _CALLER_ID.fullmatch(supplied) else uuid.uuid4().hex  # "$" would let "\n" end it
        response = self.get_response(request)
        response["X-Request-ID"] = request.id
        metrics.observe_request(request, response, time.perf_counter() - started)
        if not log.isEnabledFor(logging.INFO):
            return response  # the path's escaping is not paid for on every request when the log is off
        log.info(
            "id=%s method=%s path=%s status=%s ms=%.1f model_version=%s",
            request.id,
            request.method,
            escape_uri_path(request.path),  # as sent: a %0A or %20 in it must not forge a line or a field
            response.status_code,
            (time.perf_counter() - started) * 1000,
            getattr(request, "model_version", "-"),
        )
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, _ANSWERED_BY_DJANGO):
            return None  # a 404, 403 or 400 that Django answers itself: no error of ours
        if isinstance(exception, OperationalError | InterfaceError) and request.path.startswith(_API_PREFIXES):
            log.warning(
                "id=%s database unavailable on %s %s: %s",
                request.id,
                request.method,
                escape_uri_path(request.path),
                exception,
            )
            body, status, headers = database_unavailable()
            return JsonResponse(body, status=status, headers=headers)
        log.exception(
            "id=%s unhandled error on %s %s", getattr(request, "id", "-"), request.method, escape_uri_path(request.path)
        )
        if not request.path.startswith(_API_PREFIXES):
            return None  # HTML pages get Django's own error page
        return JsonResponse(server_error(getattr(request, "id", None)), status=500)
