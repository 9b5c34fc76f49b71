"""The OpenAPI description of POST /detect-fraud and the batch jobs, by hand: the views validate
without serializers, so the ones here exist only for the schema."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from modelops.ml.schema import BOUNDS, DECIMAL_TEXT, FEATURES, MAX_NUMBER_TEXT

from .batches import CSV_COLUMNS
from .parsing import EXTERNAL_ID_MAX

# What modelops.ml.schema.is_number_text accepts.
NUMERIC_STRING = rf"^\s*{DECIMAL_TEXT}\s*$"


# Printable text, not all spaces: what parsing._external_id_error accepts.
EXTERNAL_ID_PATTERN = r"^[^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$"


# --- Request --------------------------------------------------------------------------------


class FeatureValueField(serializers.Field):
    """One feature of a transaction: a JSON number or a string holding one, within its bounds."""

    def __init__(self, feature: str, **kwargs):
        self.feature = feature
        super().__init__(**kwargs)


class FeatureValueFieldExtension(OpenApiSerializerFieldExtension):
    target_class = FeatureValueField

    def map_serializer_field(self, auto_schema, direction):
        low, high = BOUNDS[self.target.feature]
        return {
            "oneOf": [
                {"type": "number", "minimum": low, "maximum": high},
                {"type": "string", "pattern": NUMERIC_STRING},
            ],
            "description": (
                f"A number from {low:g} to {high:g}, or a string holding one within the same bounds, at most "
                f"{MAX_NUMBER_TEXT} characters besides the spaces around it (the original client sent V-values "
                "as strings). NaN, Infinity and booleans are refused."
            ),
        }


class _TransactionMeta:
    ref_name = "Transaction"


# Built with type(): feature names such as "V1" are fields, in the model's order.
TransactionSerializer = type(
    "TransactionSerializer",
    (serializers.Serializer,),
    {
        "__module__": __name__,
        "__doc__": "One card transaction: the dataset's features and an optional client id.",
        **{name: FeatureValueField(name) for name in FEATURES},
        "external_id": serializers.RegexField(
            EXTERNAL_ID_PATTERN,
            required=False,
            min_length=1,
            max_length=EXTERNAL_ID_MAX,
            help_text=(
                "The client's own id of the transaction: printable text (no control characters), "
                "surrounding spaces ignored. A repeat returns the stored result "
                '("repeated": true) and stores nothing.'
            ),
        ),
        "Meta": _TransactionMeta,
    },
)


class DetectFraudRequestSerializer(serializers.Serializer):
    """Placeholder for the request body: one transaction or a list of them (see its extension)."""

    class Meta:
        ref_name = "DetectFraudRequest"


class DetectFraudRequestExtension(OpenApiSerializerExtension):
    target_class = DetectFraudRequestSerializer

    def map_serializer(self, auto_schema, direction):
        transaction = auto_schema.resolve_serializer(TransactionSerializer, direction).ref
        limit = settings.SCORING_MAX_BATCH
        return {
            "oneOf": [
                transaction,
                {
                    "type": "array",
                    "items": transaction,
                    "minItems": 1,
                    "maxItems": limit,
                    "description": (
                        f"A batch of 1 to {limit} transactions (SCORING_MAX_BATCH), answered with a list "
                        "in the same order. A batch with any bad item is refused whole."
                    ),
                },
            ],
            "description": (
                "One transaction, or a list of them. The body is read as JSON whatever its Content-Type, "
                "and a JSON string holding the JSON (what the original test client sent) is accepted too."
            ),
        }


# --- Response -------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": list(FEATURES)})
class FeatureNameField(serializers.CharField):
    """A feature's name (a plain enum, without drf-spectacular's per-choice description)."""


class ContributionSerializer(serializers.Serializer):
    feature = FeatureNameField(help_text="The feature's name.")
    value = serializers.FloatField(help_text="The feature's value in this transaction.")
    contribution = serializers.FloatField(help_text="Its contribution to the fraud score, in log-odds (signed).")

    class Meta:
        ref_name = "Contribution"


class ScoreResultSerializer(serializers.Serializer):
    """The decision on one transaction (detection.services.ScoreResult.as_json)."""

    is_fraud = serializers.BooleanField(help_text="fraud_probability >= threshold.")
    fraud_probability = serializers.FloatField(min_value=0, max_value=1)
    threshold = serializers.FloatField(min_value=0, max_value=1, help_text="The model version's decision threshold.")
    model_version = serializers.IntegerField(min_value=1, help_text="The model version that scored it.")
    transaction_id = serializers.IntegerField(min_value=1, help_text="The stored transaction's id.")
    external_id = serializers.CharField(required=False, help_text="Present when the request gave one.")
    repeated = serializers.BooleanField(
        required=False,
        help_text="Present with external_id: true when this is the stored result of an earlier request.",
    )
    contributions = ContributionSerializer(
        many=True,
        required=False,
        help_text="With ?explain=true: the five features that moved the score most.",
    )

    class Meta:
        ref_name = "ScoreResult"


class DetectFraudResponseSerializer(serializers.Serializer):
    """Placeholder for the 200 body: one result, or a list for a list (see its extension)."""

    class Meta:
        ref_name = "DetectFraudResponse"


class DetectFraudResponseExtension(OpenApiSerializerExtension):
    target_class = DetectFraudResponseSerializer

    def map_serializer(self, auto_schema, direction):
        result = auto_schema.resolve_serializer(ScoreResultSerializer, direction).ref
        return {
            "oneOf": [result, {"type": "array", "items": result, "minItems": 1}],
            "description": "One result for one transaction; a list, in the request's order, for a list.",
        }


class ErrorItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, help_text="The bad item's position in the list.")
    fields = serializers.DictField(child=serializers.CharField(), help_text="Field name: what is wrong with it.")

    class Meta:
        ref_name = "ErrorItem"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. invalid_input, no_active_model.")
    message = serializers.CharField(help_text="Human-readable.")
    fields = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="For one transaction: field name: what is wrong with it.",
    )
    items = ErrorItemSerializer(
        many=True,
        required=False,
        help_text="For a list: each bad item's index and fields (the first 100).",
    )
    line = serializers.IntegerField(
        required=False, min_value=1, help_text="For a CSV file: the line of the first problem (the header is line 1)."
    )
    request_id = serializers.CharField(
        required=False,
        help_text="For a server-side failure: the id under which the server log holds the detail.",
    )

    class Meta:
        ref_name = "ErrorDetail"


class ErrorSerializer(serializers.Serializer):
    """The one shape of every API error."""

    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


# --- Authentication -------------------------------------------------------------------------


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """detection.auth.ApiKeyAuthentication: the key as a bearer token or in X-API-Key."""

    target_class = "detection.auth.ApiKeyAuthentication"
    name = ["apiKeyBearer", "apiKeyHeader"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]

    def get_security_requirement(self, auto_schema):
        requirements = [{name: []} for name in self.name]
        # An empty requirement: no key needed.
        if getattr(settings, "SCORING_API_OPEN", False):
            requirements.append({})
        return requirements


# --- Examples -------------------------------------------------------------------------------
# Tests post each request example and expect the status of the response example of its name.

# A legitimate row as compatible clients send it, V-values as strings (tests/fixtures/original_rows.json).
ORIGINAL_LEGIT_ROW = {
    "Time": 0,
    "V1": "-1.3598071336738",
    "V2": "-0.0727811733098497",
    "V3": "2.53634673796914",
    "V4": "1.37815522427443",
    "V5": "-0.338320769942518",
    "V6": "0.462387777762292",
    "V7": "0.239598554061257",
    "V8": "0.0986979012610507",
    "V9": "0.363786969611213",
    "V10": "0.0907941719789316",
    "V11": "-0.551599533260813",
    "V12": "-0.617800855762348",
    "V13": "-0.991389847235408",
    "V14": "-0.311169353699879",
    "V15": "1.46817697209427",
    "V16": "-0.470400525259478",
    "V17": "0.207971241929242",
    "V18": "0.0257905801985591",
    "V19": "0.403992960255733",
    "V20": "0.251412098239705",
    "V21": "-0.018306777944153",
    "V22": "0.277837575558899",
    "V23": "-0.110473910188767",
    "V24": "0.0669280749146731",
    "V25": "0.128539358273528",
    "V26": "-0.189114843888824",
    "V27": "0.133558376740387",
    "V28": "-0.0210530534538215",
    "Amount": 149.62,
}
NUMBERS_ROW = {
    "Time": 406,
    **{f"V{i}": round(float(ORIGINAL_LEGIT_ROW[f"V{i}"]) * 0.5, 4) for i in range(1, 29)},
    "Amount": 12.5,
    "external_id": "card-7f3a-000042",
}

_RESULT = {"is_fraud": False, "fraud_probability": 0.000214, "threshold": 0.731, "model_version": 3}

EXAMPLES = [
    OpenApiExample(
        "Original client row",
        summary="The original app's payload: V-values as JSON strings",
        value=ORIGINAL_LEGIT_ROW,
        request_only=True,
    ),
    OpenApiExample(
        "Original client row",
        value={**_RESULT, "transaction_id": 1},
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Numbers with an external id",
        value=NUMBERS_ROW,
        request_only=True,
    ),
    OpenApiExample(
        "Numbers with an external id",
        value={**_RESULT, "transaction_id": 2, "external_id": NUMBERS_ROW["external_id"], "repeated": False},
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Batch",
        summary="A list is answered with a list in the same order",
        value=[ORIGINAL_LEGIT_ROW, {k: v for k, v in NUMBERS_ROW.items() if k != "external_id"}],
        request_only=True,
    ),
    OpenApiExample(
        "Batch",
        value=[{**_RESULT, "transaction_id": 3}, {**_RESULT, "fraud_probability": 0.000187, "transaction_id": 4}],
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Explained",
        summary="With ?explain=true",
        value={
            **_RESULT,
            "transaction_id": 5,
            "contributions": [
                {"feature": "V14", "value": -0.311169353699879, "contribution": -1.204511},
                {"feature": "V4", "value": 1.37815522427443, "contribution": 0.412735},
                {"feature": "V10", "value": 0.0907941719789316, "contribution": -0.380122},
                {"feature": "V12", "value": -0.617800855762348, "contribution": -0.301546},
                {"feature": "Amount", "value": 149.62, "contribution": 0.122118},
            ],
        },
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Invalid field",
        summary="A field that is not a number, and one out of bounds",
        value={**ORIGINAL_LEGIT_ROW, "V3": "abc", "Amount": -5},
        request_only=True,
    ),
    OpenApiExample(
        "Invalid field",
        value={
            "error": {
                "code": "invalid_input",
                "message": "the transaction is invalid",
                "fields": {"V3": "must be a number", "Amount": "must be between 0 and 1e+09"},
            }
        },
        response_only=True,
        status_codes=["400"],
    ),
    OpenApiExample(
        "Invalid batch item",
        summary="A batch with a bad item is refused whole",
        value=[ORIGINAL_LEGIT_ROW, {k: v for k, v in ORIGINAL_LEGIT_ROW.items() if k != "V7"}],
        request_only=True,
    ),
    OpenApiExample(
        "Invalid batch item",
        value={
            "error": {
                "code": "invalid_input",
                "message": "1 of 2 transactions are invalid (first: index 1)",
                "items": [{"index": 1, "fields": {"V7": "is required"}}],
            }
        },
        response_only=True,
        status_codes=["400"],
    ),
    OpenApiExample(
        "No active model",
        value={
            "error": {
                "code": "no_active_model",
                "message": "no model is active; train one with `manage.py train_model --csv FILE --activate`",
            }
        },
        response_only=True,
        status_codes=["503"],
    ),
]


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


DETECT_FRAUD_SCHEMA = {
    "operation_id": "detect_fraud",
    "summary": "Score one transaction or a batch",
    "description": (
        "Scores with the active model version and stores each transaction with its prediction "
        "(all of a batch, or none). Compatible with the original app's clients: numbers may be "
        "JSON strings, and the path may end with a slash. An external_id is the client's own: a "
        "repeat from the same API key (or signed-in user) returns the stored result; another "
        "client's ids are never seen."
    ),
    "tags": ["scoring"],
    "parameters": [
        OpenApiParameter(
            "explain",
            OpenApiTypes.BOOL,
            OpenApiParameter.QUERY,
            description="Add each result's top five feature contributions (also accepts 1 and yes).",
        )
    ],
    "request": {"application/json": DetectFraudRequestSerializer},
    "responses": {
        200: OpenApiResponse(response=DetectFraudResponseSerializer, description="Scored (and stored)."),
        400: _error("Invalid input (code invalid_input); nothing is stored."),
        401: _error("No valid API key, when keys are required."),
        403: _error("A signed-in user without the review permission, or a browser session without its CSRF token."),
        409: _error(
            "An external_id this client (API key, else user) sent before, now with other features "
            "(code external_id_conflict, naming each such id); nothing is stored."
        ),
        411: _error("A chunked body without Content-Length (code length_required): it is not read."),
        413: _error("The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."),
        429: _error("Too many requests from this client (SCORING_RATE_LIMIT)."),
        503: _error(
            "No usable active model (code no_active_model or model_unavailable), or the active "
            "model changed more than once while the request was scored (model_changing)."
        ),
    },
    "examples": EXAMPLES,
}


def drop_duplicate_routes(endpoints):
    """drf-spectacular hook: lists /detect-fraud once, without its trailing-slash alias."""
    return [endpoint for endpoint in endpoints if endpoint[0] != "/detect-fraud/"]


class LabelSerializer(serializers.Serializer):
    transaction_id = serializers.IntegerField(required=False, help_text="The id /detect-fraud answered; or external_id")
    external_id = serializers.CharField(
        required=False, max_length=100, help_text="The client's id of the transaction, unique across clients"
    )
    label = serializers.ChoiceField(choices=["fraud", "legitimate"])
    source = serializers.RegexField(r"^[a-z0-9][a-z0-9_.-]{0,39}$", help_text="Who reports it, e.g. chargeback")
    reported_at = serializers.DateTimeField(required=False, help_text="When the source reported it; default now")


class LabelsResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    recorded = serializers.IntegerField()
    repeated = serializers.IntegerField(help_text="Labels the same source had already given: not recorded again")


LABELS_SCHEMA = {
    "operation_id": "post_labels",
    "summary": "Send labels from another system (chargebacks)",
    "description": (
        "One label or a list of them, recorded all or none as decisions beside the analysts'. The same "
        "label from the same source twice is recorded once. A transaction takes the label unless an "
        "analyst decided it after the report. Needs an API key created with `manage.py api_key create "
        "NAME --label` (or a signed-in analyst), even when the scoring API is open."
    ),
    "tags": ["labels"],
    "request": {"application/json": LabelSerializer(many=True)},
    "responses": {
        200: OpenApiResponse(response=LabelsResultSerializer, description="Recorded."),
        400: _error("A bad field or an unknown id, named per item (code invalid_input); nothing is recorded."),
        401: _error("No valid API key."),
        403: _error("A key without the label permission, or a user without the review permission."),
        429: _error("Too many requests from this client (SCORING_RATE_LIMIT)."),
    },
    "examples": [
        OpenApiExample(
            "Two chargebacks",
            value=[
                {
                    "transaction_id": 1042,
                    "label": "fraud",
                    "source": "chargeback",
                    "reported_at": "2026-12-01T10:30:00Z",
                },
                {"external_id": "ord-77", "label": "fraud", "source": "chargeback"},
            ],
            request_only=True,
        ),
        OpenApiExample("Recorded", value={"received": 2, "recorded": 2, "repeated": 0}, response_only=True),
        OpenApiExample(
            "Unknown id",
            value={
                "error": {
                    "code": "invalid_input",
                    "message": "item 0: transaction_id no transaction with this id",
                    "items": [{"index": 0, "fields": {"transaction_id": "no transaction with this id"}}],
                }
            },
            response_only=True,
            status_codes=["400"],
        ),
    ],
}


# --- Batch jobs -----------------------------------------------------------------------------


class BatchRequestSerializer(serializers.Serializer):
    """Placeholder for the JSON body of a batch job: a list of transactions (see its extension)."""

    class Meta:
        ref_name = "BatchRequest"


class BatchRequestExtension(OpenApiSerializerExtension):
    target_class = BatchRequestSerializer

    def map_serializer(self, auto_schema, direction):
        transaction = auto_schema.resolve_serializer(TransactionSerializer, direction).ref
        limit = settings.BATCH_MAX_ROWS
        return {
            "type": "array",
            "items": transaction,
            "minItems": 1,
            "maxItems": limit,
            "description": (
                f"1 to {limit} transactions (BATCH_MAX_ROWS), each as POST /detect-fraud takes it. Read as "
                "JSON whatever the Content-Type, except text/csv. A list with any bad item is refused whole."
            ),
        }


class BatchJobSerializer(serializers.Serializer):
    """A batch job and how far it got (detection.batch_views.job_json)."""

    id = serializers.UUIDField(help_text="The job's id: unguessable, and only its client can read the job.")
    status = serializers.ChoiceField(
        choices=["queued", "running", "done", "failed"],
        help_text="queued, running, done, or failed (error says why; the rows scored before stay).",
    )
    rows_total = serializers.IntegerField(min_value=1)
    rows_scored = serializers.IntegerField(min_value=0, help_text="Leading rows whose results can be read.")
    error = serializers.CharField(
        allow_null=True,
        help_text="Failed: why. Queued or running: why the last run stopped, if it did (it is run again).",
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.URLField(help_text="This job: GET /api/batches/{job_id}.")
    results_url = serializers.URLField(help_text="Its results: GET /api/batches/{job_id}/results.")

    class Meta:
        ref_name = "BatchJob"


class BatchResultSerializer(ScoreResultSerializer):
    """One row's decision, as POST /detect-fraud answers it, with the row's place in the input."""

    row = serializers.IntegerField(min_value=0, help_text="The row's position in the input, from 0.")
    contributions = None  # the stored contributions are on the transaction; a job does not return them

    class Meta:
        ref_name = "BatchResult"


class BatchResultsSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    rows_total = serializers.IntegerField(min_value=1)
    rows_scored = serializers.IntegerField(min_value=0)
    results = BatchResultSerializer(many=True, help_text="In input order, from the cursor on; scored rows only.")
    next_cursor = serializers.IntegerField(
        allow_null=True,
        min_value=0,
        help_text=(
            "The cursor of the next page; null once no further row will be scored. Past the rows "
            "scored so far, the next page is empty until more are."
        ),
    )
    next = serializers.URLField(allow_null=True, help_text="This URL with the next cursor, or null.")

    class Meta:
        ref_name = "BatchResults"


_BATCH_ROW = {k: v for k, v in NUMBERS_ROW.items() if k != "external_id"}
_JOB_ID = "0b6f7a1c-58d1-4b43-9d0e-2f7c9a5e8e21"
_JOB_URL = f"http://127.0.0.1:8000/api/batches/{_JOB_ID}"
_JOB = {
    "id": _JOB_ID,
    "status": "queued",
    "rows_total": 2,
    "rows_scored": 0,
    "error": None,
    "created_at": "2026-12-07T10:30:00.123456+00:00",
    "started_at": None,
    "finished_at": None,
    "status_url": _JOB_URL,
    "results_url": f"{_JOB_URL}/results",
}
JOB_ID_PARAMETER = OpenApiParameter(
    "job_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The id POST /api/batches answered."
)

BATCH_CREATE_SCHEMA = {
    "operation_id": "create_batch",
    "summary": "Score a large batch as a job, off the request path",
    "description": (
        "Validates the whole batch at once (a JSON list of transactions as POST /detect-fraud takes "
        "them, or a CSV file with the dataset's columns sent as text/csv, Class ignored), stores it and "
        "answers 202 with the job; the task cluster then scores it with the active model, in chunks, "
        "storing each transaction with its prediction as /detect-fraud does. Any bad row refuses the "
        "whole batch, naming the row (index, or line of the file), the field and why, and stores "
        "nothing. An external_id is scoped to the client as on /detect-fraud: one sent before with "
        "other features is a 409, and one sent before with the same features is answered with the "
        "stored result (repeated)."
    ),
    "tags": ["batches"],
    "parameters": [
        OpenApiParameter(
            "Location",
            OpenApiTypes.URI,
            OpenApiParameter.HEADER,
            response=[202],
            description="The job's status URL, as status_url.",
        )
    ],
    "request": {"application/json": BatchRequestSerializer, "text/csv": OpenApiTypes.STR},
    "responses": {
        202: OpenApiResponse(
            response=BatchJobSerializer, description="Accepted and stored; Location names the job's status."
        ),
        400: _error("Invalid input (code invalid_input), naming the bad items or the file's line; nothing is stored."),
        401: _error("No valid API key, when keys are required."),
        403: _error("A signed-in user without the review permission, or a browser session without its CSRF token."),
        409: _error(
            "An external_id this client sent before, or earlier in the batch, with other features "
            "(code external_id_conflict); nothing is stored."
        ),
        411: _error("A chunked body without Content-Length (code length_required): it is not read."),
        413: _error("Over BATCH_MAX_BYTES or BATCH_MAX_ROWS (code payload_too_large); nothing is stored."),
        429: _error("Too many requests from this client (SCORING_RATE_LIMIT)."),
        503: _error("No usable active model (code no_active_model or model_unavailable); nothing is stored."),
    },
    "examples": [
        OpenApiExample(
            "Two transactions", value=[ORIGINAL_LEGIT_ROW, _BATCH_ROW], request_only=True, media_type="application/json"
        ),
        OpenApiExample("Two transactions", value=_JOB, response_only=True, status_codes=["202"]),
        OpenApiExample(
            "Invalid row",
            value={
                "error": {
                    "code": "invalid_input",
                    "message": "1 of 2 transactions are invalid (first: index 1)",
                    "items": [{"index": 1, "fields": {"V7": "is required"}}],
                }
            },
            response_only=True,
            status_codes=["400"],
        ),
        OpenApiExample(
            "Invalid line",
            value={
                "error": {
                    "code": "invalid_input",
                    "message": "the file cannot be scored: line 5: column V3 is not a number: 'oops'",
                    "line": 5,
                }
            },
            response_only=True,
            status_codes=["400"],
        ),
    ],
}

BATCH_STATUS_SCHEMA = {
    "operation_id": "get_batch",
    "summary": "A batch job's status",
    "description": "How far the job got. Another client's job, or an unknown id, is a 404.",
    "tags": ["batches"],
    "parameters": [JOB_ID_PARAMETER],
    "responses": {
        200: BatchJobSerializer,
        401: _error("No valid API key, when keys are required."),
        403: _error("A signed-in user without the review permission."),
        404: _error("No job of this client has this id (code not_found)."),
        429: _error("Too many requests from this client (SCORING_RATE_LIMIT)."),
    },
    "examples": [
        OpenApiExample(
            "Running",
            value={**_JOB, "status": "running", "rows_scored": 1, "started_at": "2026-12-07T10:30:01.5+00:00"},
            response_only=True,
            status_codes=["200"],
        ),
    ],
}

BATCH_RESULTS_SCHEMA = {
    "operation_id": "get_batch_results",
    "summary": "A batch job's results, in input order",
    "description": (
        "The rows scored so far, in input order, a page at a time: each as POST /detect-fraud "
        "answers it, with its row number. Follow next (or pass next_cursor as cursor) for the next "
        "page. With format=csv: every row scored so far from the cursor, as one CSV download "
        f"({', '.join(CSV_COLUMNS)}; is_fraud and repeated as 0 or 1)."
    ),
    "tags": ["batches"],
    "parameters": [
        JOB_ID_PARAMETER,
        OpenApiParameter(
            "cursor",
            {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},  # at most 18 digits, as the view reads it
            OpenApiParameter.QUERY,
            description="The row to start from, as next_cursor gave it; 0 by default.",
        ),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1},
            OpenApiParameter.QUERY,
            description="Rows per page: 100 by default, at most BATCH_PAGE_MAX (1,000 by default); more is that many.",
        ),
        OpenApiParameter(
            "format", {"type": "string", "enum": ["json", "csv"]}, OpenApiParameter.QUERY, description="json or csv."
        ),
    ],
    "responses": {
        (200, "application/json"): BatchResultsSerializer,
        (200, "text/csv"): OpenApiTypes.STR,
        400: _error("A cursor, page_size or format that is not one (code invalid_input)."),
        401: _error("No valid API key, when keys are required."),
        403: _error("A signed-in user without the review permission."),
        404: _error("No job of this client has this id (code not_found)."),
        429: _error("Too many requests from this client (SCORING_RATE_LIMIT)."),
    },
}
