"""Liveness and readiness probes: open to all, never throttled, answering JSON."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from modelops.ml.artifact import ArtifactError
from modelops.model_cache import NoPrimaryModel, primary_model

log = logging.getLogger(__name__)
UNAVAILABLE = inline_serializer("Unavailable", {"status": serializers.CharField(), "reason": serializers.CharField()})


class Probe(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


class Healthz(Probe):
    @extend_schema(responses=inline_serializer("Alive", {"status": serializers.CharField()}), summary="Liveness")
    def get(self, request):
        """The process is up and answering; nothing else is checked."""
        return Response({"status": "ok"})


class Readyz(Probe):
    @extend_schema(
        responses={
            200: inline_serializer(
                "Ready", {"status": serializers.CharField(), "model_version": serializers.IntegerField()}
            ),
            503: UNAVAILABLE,
        },
        summary="Readiness",
    )
    def get(self, request):
        """Ready to score: the database answers and the active model is loaded in this process.
        503 with the reason otherwise, so a load balancer takes the instance out until it recovers.
        The probe is open to anyone: the errors' own text (which can name the database's host,
        user and name, or the bucket) goes to the log, not into the answer."""
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            log.warning("not ready: database unreachable: %s", exc)
            return _unavailable("database unreachable; the server log has the error")
        try:
            model = primary_model()
        except NoPrimaryModel:
            return _unavailable("no model version is active")
        except ArtifactError as exc:
            log.warning("not ready: the active model cannot be loaded: %s", exc)
            return _unavailable("the active model cannot be loaded; the server log has the error")
        return Response({"status": "ready", "model_version": model.version})


def _unavailable(reason: str) -> Response:
    return Response({"status": "unavailable", "reason": reason}, status=503)
