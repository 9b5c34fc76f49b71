"""The batch job API: POST /api/batches, GET /api/batches/<id> and its /results. Authentication,
permissions and the rate limit are the API's defaults (settings.REST_FRAMEWORK), as for
/detect-fraud; a job is its client's alone, and another client's is a 404."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from modelops.ml.schema import FEATURES

from . import batches, parsing, tasks
from .api import FixedNegotiation, PayloadTooLarge, require_length
from .auth import client_of
from .models import BatchJob
from .openapi import BATCH_CREATE_SCHEMA, BATCH_RESULTS_SCHEMA, BATCH_STATUS_SCHEMA
from .renderers import FastJSONRenderer
from .services import read_csv

CSV_TYPES = ("text/csv",)
PAGE_ROWS = 100


class BatchBodyParser(BaseParser):
    """The body unread past BATCH_MAX_BYTES (413 above it), with its kind: a CSV file for text/csv,
    else JSON, whatever the content type, as /detect-fraud reads it."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.BATCH_MAX_BYTES
        declared = parser_context["request"].META.get("CONTENT_LENGTH") if parser_context else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes (BATCH_MAX_BYTES)")
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes (BATCH_MAX_BYTES)")
        kind = (media_type or "").split(";", 1)[0].strip().lower()
        return BatchJob.Format.CSV if kind in CSV_TYPES else BatchJob.Format.JSON, body


# A row's fields, an external_id and the separator, with room to spare.
_COMMAS_PER_ROW = 2 * (len(FEATURES) + 2)


def _refuse_too_many_values(body: bytes, limit: int) -> None:
    """TooLarge, before decoding, for a body with more objects or lists, or more commas, than
    ``limit`` rows can hold: decoded, `[[],[],…]` or `[1,1,…]` takes many times its size."""
    containers = body.count(b"{") + body.count(b"[")
    if containers > limit + 1:
        raise parsing.TooLarge(
            f"a batch job holds at most {limit} transactions (BATCH_MAX_ROWS), "
            f"this body has {containers - 1} objects or lists"
        )
    if body.count(b",") > limit * _COMMAS_PER_ROW:
        raise parsing.TooLarge(
            f"a batch job holds at most {limit} transactions (BATCH_MAX_ROWS) of {len(FEATURES)} fields"
        )


def _batch_of(request) -> tuple[parsing.Batch, str]:
    """The request's batch, validated whole, and its format; InvalidInput or TooLarge if not."""
    data = request.data
    # An empty body never reaches the parser: DRF answers it with an empty dict.
    kind, body = data if isinstance(data, tuple) else (BatchJob.Format.JSON, b"")
    limit = settings.BATCH_MAX_ROWS
    if kind == BatchJob.Format.CSV:
        values = read_csv(body, max_rows=limit)
        return parsing.Batch(values=values, external_ids=[None] * len(values)), kind
    _refuse_too_many_values(body, limit)
    items = parsing.decode(body)
    if not isinstance(items, list):
        raise parsing.InvalidInput("the body must be a JSON list of transactions, or a CSV file sent as text/csv")
    if len(items) > limit:
        raise parsing.TooLarge(
            f"a batch job holds at most {limit} transactions (BATCH_MAX_ROWS), this one has {len(items)}"
        )
    batch, _ = parsing.parse(items, max_items=limit)
    return batch, kind


def job_json(job: BatchJob, request) -> dict:
    status_url = request.build_absolute_uri(reverse("batch", args=[job.pk]))
    return {
        "id": str(job.pk),
        "status": job.status,
        "rows_total": job.rows_total,
        "rows_scored": batches.scored_rows(job),
        "error": job.error or None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "status_url": status_url,
        "results_url": request.build_absolute_uri(reverse("batch-results", args=[job.pk])),
    }


def _job_of(request, job_id: str) -> BatchJob:
    """The client's job of this id; NotFound for an unknown id and for another client's job alike."""
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        pk = None
    job = BatchJob.objects.filter(pk=pk, client=client_of(request)).first() if pk else None
    if job is None:
        raise NotFound("no batch job of this client has this id")
    return job


def _whole_number(request, name: str, default: int, *, least: int) -> int:
    text = request.query_params.get(name, "")
    if not text:
        return default
    # At most 18 digits: within a 64-bit column, and far from int()'s limit on digits.
    if not (text.isascii() and text.isdigit() and len(text) <= 18) or int(text) < least:
        raise parsing.InvalidInput(f"{name} must be a whole number of at least {least}", fields={name: text[:40]})
    return int(text)


class BatchesView(APIView):
    parser_classes = [BatchBodyParser]
    renderer_classes = [FastJSONRenderer]
    content_negotiation_class = FixedNegotiation

    @extend_schema(**BATCH_CREATE_SCHEMA)
    def post(self, request):
        require_length(request)
        batch, kind = _batch_of(request)
        job = batches.submit(batch=batch, client=client_of(request), input_format=kind)
        tasks.enqueue_batch(job.pk)
        body = job_json(job, request)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class BatchView(APIView):
    renderer_classes = [FastJSONRenderer]
    content_negotiation_class = FixedNegotiation

    @extend_schema(**BATCH_STATUS_SCHEMA)
    def get(self, request, job_id: str):
        return Response(job_json(_job_of(request, job_id), request))


class BatchResultsView(APIView):
    renderer_classes = [FastJSONRenderer]
    content_negotiation_class = FixedNegotiation

    @extend_schema(**BATCH_RESULTS_SCHEMA)
    def get(self, request, job_id: str):
        job = _job_of(request, job_id)
        cursor = _whole_number(request, "cursor", 0, least=0)
        size = min(_whole_number(request, "page_size", PAGE_ROWS, least=1), settings.BATCH_PAGE_MAX)
        kind = request.query_params.get("format", "json")
        if kind == "csv":
            response = StreamingHttpResponse(
                batches.csv_lines(job, cursor=cursor), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = content_disposition_header(True, f"batch-{job.pk}.csv")
            return response
        if kind != "json":
            raise parsing.InvalidInput("format must be json or csv", fields={"format": kind[:40]})
        rows, next_cursor = batches.results_page(job, cursor=cursor, size=size)
        next_url = None
        if next_cursor is not None:
            query = request.query_params.copy()
            query["cursor"] = str(next_cursor)
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response(
            {
                "id": str(job.pk),
                "status": job.status,
                "rows_total": job.rows_total,
                "rows_scored": batches.scored_rows(job),
                "results": rows,
                "next_cursor": next_cursor,
                "next": next_url,
            }
        )
