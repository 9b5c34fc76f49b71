"""The scoring API: POST /detect-fraud, compatible with the original app's clients."""

from __future__ import annotations

from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from . import parsing
from .models import Transaction
from .services import score_transactions


class LenientJSONParser(BaseParser):
    """Any content type is read as JSON (old clients vary in what they send), and a JSON string
    that holds JSON is unwrapped, as the original test client double-encoded its rows."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return parsing.decode(stream.read() if stream is not None else b"")


class DetectFraudView(APIView):
    parser_classes = [LenientJSONParser]

    def post(self, request):
        batch, is_list = parsing.parse(request.data)
        results = score_transactions(batch=batch, source=Transaction.Source.API)
        explain = request.query_params.get("explain", "").lower() in ("1", "true", "yes")
        body = [r.as_json(explain=explain) for r in results]
        return Response(body if is_list else body[0])
