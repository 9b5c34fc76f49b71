"""The scoring API: POST /detect-fraud, compatible with the original app's clients."""

from __future__ import annotations

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import parsing
from .models import Transaction
from .renderers import FastJSONRenderer
from .services import score_transactions


class LenientJSONParser(BaseParser):
    """Any content type is read as JSON (old clients vary in what they send), and a JSON string
    that holds JSON is unwrapped, as the original test client double-encoded its rows."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return parsing.decode(stream.read() if stream is not None else b"")


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
    # Open for now, as the original app was; API keys come with the API authentication work.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        batch, is_list = parsing.parse(request.data)
        results = score_transactions(batch=batch, source=Transaction.Source.API)
        explain = request.query_params.get("explain", "").lower() in ("1", "true", "yes")
        body = [r.as_json(explain=explain) for r in results]
        return Response(body if is_list else body[0])
