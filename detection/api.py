"""The scoring API: POST /detect-fraud, compatible with the /detect-fraud clients."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import labels, parsing
from .auth import LabelAccess, client_of
from .models import Transaction
from .openapi import DETECT_FRAUD_SCHEMA, LABELS_SCHEMA
from .renderers import FastJSONRenderer
from .services import score_transactions


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class LengthRequired(APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"


def require_length(request) -> None:
    """LengthRequired for a chunked body without Content-Length: under WSGI Django reads no body
    without a length, so the request would seem empty."""
    meta = request.META
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not meta.get("CONTENT_LENGTH") and "wsgi.input" in meta:
        raise LengthRequired("send the body with a Content-Length header; chunked bodies are not read")


class LenientJSONParser(BaseParser):
    """Any content type is read as JSON and a JSON string holding JSON is unwrapped, as compatible
    clients send both; a body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 unparsed."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)")
        return parsing.decode(body)


class FixedNegotiation(BaseContentNegotiation):
    """The API answers JSON only, so there is nothing to negotiate on each request."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DetectFraudView(APIView):
    parser_classes = [LenientJSONParser]
    renderer_classes = [FastJSONRenderer]
    content_negotiation_class = FixedNegotiation

    @extend_schema(**DETECT_FRAUD_SCHEMA)
    def post(self, request):
        require_length(request)
        batch, is_list = parsing.parse(request.data)
        results = score_transactions(
            batch=batch, source=Transaction.Source.API, client=client_of(request), is_list=is_list
        )
        request._request.model_version = results[0].model_version  # for the request log line
        explain = request.query_params.get("explain", "").lower() in ("1", "true", "yes")
        body = [r.as_json(explain=explain) for r in results]
        return Response(body if is_list else body[0])


class LabelsView(APIView):
    """POST /api/labels: labels from other systems, such as chargebacks, all or none."""

    parser_classes = [LenientJSONParser]
    renderer_classes = [FastJSONRenderer]
    content_negotiation_class = FixedNegotiation
    permission_classes = [LabelAccess]

    @extend_schema(**LABELS_SCHEMA)
    def post(self, request):
        found, is_list = labels.parse(request.data, max_items=settings.SCORING_MAX_BATCH)
        key = request.auth
        who = f"key {key.prefix} ({key.name})" if key is not None else request.user.get_username()
        return Response(labels.apply(found, is_list=is_list, recorded_by=who))
