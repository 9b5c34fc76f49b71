"""How the API answers each failure, in the one error shape of common.errors."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import database_unavailable, error_body
from modelops.ml.artifact import ArtifactError
from modelops.model_cache import NoPrimaryModel

from .parsing import InvalidInput, TooLarge
from .services import ExternalIdConflict
from .storage import VersionNotPrimary

log = logging.getLogger(__name__)
NO_MODEL_MESSAGE = "no model is active; train one with `manage.py train_model --csv FILE --activate`"
MODEL_CHANGING_MESSAGE = "the active model changed while this request was scored, more than once; try again"


MODEL_ERRORS = (NoPrimaryModel, ArtifactError, VersionNotPrimary)


def model_unavailable(exc: Exception, request) -> tuple[dict, dict]:
    """The error and headers answering one of MODEL_ERRORS; the artifact's failure goes only to the log."""
    if isinstance(exc, NoPrimaryModel):
        return {"code": "no_active_model", "message": NO_MODEL_MESSAGE}, {}
    if isinstance(exc, VersionNotPrimary):
        return {"code": "model_changing", "message": MODEL_CHANGING_MESSAGE}, {"Retry-After": "1"}
    request_id = getattr(request, "id", None)
    log.error("id=%s the active model cannot be loaded: %s", request_id, exc)
    error = {
        "code": "model_unavailable",
        "message": "the active model cannot be loaded; the server log has the error under the request id",
        "request_id": request_id,
    }
    return error, {}


def exception_handler(exc, context):
    if isinstance(exc, OperationalError | InterfaceError):
        body, code, headers = database_unavailable()
        return Response(body, status=code, headers=headers)
    if isinstance(exc, ExternalIdConflict):
        return Response({"error": exc.detail}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, TooLarge):
        return Response({"error": exc.detail}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, InvalidInput):
        return Response({"error": exc.detail}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, MODEL_ERRORS):
        error, headers = model_unavailable(exc, context["request"])
        return Response({"error": error}, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=headers)
    response = drf_exception_handler(exc, context)
    if response is not None:
        # DRF's own answers (404, 405, 401, 429...) are {"detail": ErrorDetail(message, code)}.
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(code, str(detail))
    return response
