"""Read-only API of model versions: what a client's risk team asks about the model scoring them."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .ml.schema import FEATURES
from .models import ModelVersion


class ModelVersionOutput(serializers.ModelSerializer):
    features = serializers.SerializerMethodField()
    data_files = serializers.SerializerMethodField()
    parent = serializers.SlugRelatedField(slug_field="version", read_only=True, allow_null=True)
    training_run = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    status = serializers.CharField(
        source="state", help_text="primary, shadow, retired, accepted, candidate or rejected"
    )
    role = serializers.CharField(allow_null=True, help_text="primary or shadow when deployed, else null")

    class Meta:
        model = ModelVersion
        fields = [
            "version",
            "status",
            "role",
            "kind",
            "training_run",
            "created_at",
            "activated_at",
            "threshold",
            "metrics",
            "params",
            "training_rows",
            "training_frauds",
            "parent",
            "features",
            "data_files",
            "sha256",
            "library_versions",
        ]

    def get_features(self, version) -> list[str]:
        return list(FEATURES)

    @extend_schema_field(
        inline_serializer(
            "ModelDataFile",
            {"key": serializers.CharField(), "rows": serializers.IntegerField(), "frauds": serializers.IntegerField()},
            many=True,
        )
    )
    def get_data_files(self, version) -> list[dict]:
        return [{"key": f.key, "rows": f.rows, "frauds": f.frauds} for f in version.data_files.all()]


# The project's one error shape, as these endpoints answer it.
ERROR = inline_serializer(
    "ModelsError",
    {
        "error": inline_serializer(
            "ModelsErrorDetail", {"code": serializers.CharField(), "message": serializers.CharField()}
        )
    },
)
ERRORS = {401: ERROR, 403: ERROR, 404: ERROR, 429: ERROR}


class ActiveModelView(APIView):
    session_permission = "modelops.view_modelversion"

    @extend_schema(responses={200: ModelVersionOutput, **ERRORS}, summary="The active model version")
    def get(self, request):
        version = ModelVersion.objects.primary().select_related("parent", "deployment").first()
        if version is None:
            return Response({"error": {"code": "no_active_model", "message": "no model version is active"}}, status=404)
        return Response(ModelVersionOutput(version).data)


class ModelVersionView(APIView):
    session_permission = "modelops.view_modelversion"

    @extend_schema(responses={200: ModelVersionOutput, **ERRORS}, summary="A model version by its number")
    def get(self, request, version: int):
        found = get_object_or_404(ModelVersion.objects.select_related("parent", "deployment"), version=version)
        return Response(ModelVersionOutput(found).data)
