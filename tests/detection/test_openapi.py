"""The OpenAPI contract: the schema at /api/schema/ is valid OpenAPI 3, what it documents for
POST /detect-fraud is what the endpoint does, and /api/docs/ needs nothing from another host."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema
from jsonschema import Draft202012Validator

from detection.models import Transaction

JSON = "application/json"


def fetch_schema(client) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200, response.content[:500]
    return yaml.safe_load(response.content)


@pytest.fixture
def schema(client, db) -> dict:
    return fetch_schema(client)


def operation(schema: dict) -> dict:
    return schema["paths"]["/detect-fraud"]["post"]


def validator(schema: dict, sub_schema: dict) -> Draft202012Validator:
    """A JSON Schema validator for one schema of the document, its $refs resolved in the document."""
    return Draft202012Validator({**sub_schema, "components": schema["components"]})


def response_schema(schema: dict, status: int | str) -> dict:
    return operation(schema)["responses"][str(status)]["content"][JSON]["schema"]


def request_examples(schema: dict) -> dict[str, object]:
    examples = operation(schema)["requestBody"]["content"][JSON]["examples"]
    return {name: example["value"] for name, example in examples.items()}


def documented_status(schema: dict, name: str) -> str:
    """The status under which the response example named like a request example is documented."""
    statuses = [
        status
        for status, response in operation(schema)["responses"].items()
        if name in response.get("content", {}).get(JSON, {}).get("examples", {})
    ]
    assert len(statuses) == 1, f"request example {name} needs one response example of its name, has {statuses}"
    return statuses[0]


def post(client, body, query: str = ""):
    return client.post(f"/detect-fraud{query}", data=json.dumps(body), content_type=JSON)


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # drf-spectacular's own validation against the OpenAPI 3.0 JSON schema
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
    openapi_spec_validator.validate(schema)


def test_the_json_rendering_is_the_same_schema(client, schema):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert json.loads(response.content) == schema


def test_detect_fraud_is_documented_once_with_its_responses(schema):
    assert "/detect-fraud" in schema["paths"]
    assert "/detect-fraud/" not in schema["paths"]  # the trailing-slash alias is the same operation
    responses = operation(schema)["responses"]
    assert {"200", "400", "503"} <= responses.keys()
    assert {"401", "413", "429"} <= responses.keys()
    assert response_schema(schema, 200) == {"$ref": "#/components/schemas/DetectFraudResponse"}
    for status in responses.keys() - {"200"}:
        assert response_schema(schema, status) == {"$ref": "#/components/schemas/Error"}
    assert [p["name"] for p in operation(schema)["parameters"]] == ["explain"]
    assert operation(schema)["requestBody"]["content"][JSON]["schema"] == {
        "$ref": "#/components/schemas/DetectFraudRequest"
    }


def test_the_request_schema_takes_one_transaction_or_a_bounded_list(schema):
    components = schema["components"]["schemas"]
    transaction = components["Transaction"]
    assert set(transaction["required"]) == {"Time", *(f"V{i}" for i in range(1, 29)), "Amount"}
    assert transaction["properties"]["external_id"]["maxLength"] == 100
    one, many = components["DetectFraudRequest"]["oneOf"]
    assert one == {"$ref": "#/components/schemas/Transaction"}
    assert (many["minItems"], many["maxItems"]) == (1, settings.SCORING_MAX_BATCH)


def test_the_original_clients_payload_is_a_documented_example(schema, original_rows):
    assert original_rows["legit"] in request_examples(schema).values()


def test_every_documented_example_matches_its_schema(schema):
    request = validator(schema, operation(schema)["requestBody"]["content"][JSON]["schema"])
    for name, value in request_examples(schema).items():
        if documented_status(schema, name).startswith("2"):
            request.validate(value)
        else:
            assert not request.is_valid(value), f"the refused example {name} satisfies the request schema"
    for status, response in operation(schema)["responses"].items():
        content = response.get("content", {}).get(JSON, {})
        for name, example in content.get("examples", {}).items():
            errors = [e.message for e in validator(schema, content["schema"]).iter_errors(example["value"])]
            assert not errors, f"response example {name} ({status}): {errors}"


def test_each_request_example_gets_its_documented_status_and_shape(client, schema, active_version):
    examples = request_examples(schema)
    assert len(examples) >= 4
    for name, value in examples.items():
        status = documented_status(schema, name)
        before = Transaction.objects.count()
        response = post(client, value)
        assert str(response.status_code) == status, f"{name}: {response.status_code} {response.content[:300]}"
        body = response.json()
        errors = [e.message for e in validator(schema, response_schema(schema, status)).iter_errors(body)]
        assert not errors, f"{name}: {errors}\n{body}"
        stored = Transaction.objects.count() - before
        if status.startswith("2"):
            assert stored == (len(value) if isinstance(value, list) else 1)
            assert isinstance(body, list) == isinstance(value, list)
        else:
            assert stored == 0


def test_an_explained_result_matches_the_schema(client, schema, active_version, original_rows):
    response = post(client, original_rows["fraud"], query="?explain=true")
    assert response.status_code == 200
    body = response.json()
    assert len(body["contributions"]) == 5
    validator(schema, response_schema(schema, 200)).validate(body)


def test_without_an_active_model_the_503_matches_the_schema(client, schema, original_rows):
    response = post(client, original_rows["legit"])
    assert response.status_code == 503
    validator(schema, response_schema(schema, 503)).validate(response.json())


def test_the_docs_page_uses_only_this_servers_static_files(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    # No absolute URL at all: everything the page loads comes from the server that sent it.
    hosts = {urlsplit(url).netloc for url in re.findall(r"(?:https?:)?//[\w.\-:\[\]]+[^\s\"'<>]*", html)}
    assert hosts <= {"", "testserver"}, f"the docs page refers to other hosts: {hosts}"
    resources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert len(resources) >= 3  # the stylesheet, the two scripts (and the favicon)
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    for url in resources:
        assert url.startswith(static_url), f"{url} is not one of the app's static files"
        assert finders.find(url[len(static_url) :]), f"{url} is not in the app's static files"
    assert "/api/schema/" in html


@pytest.mark.parametrize("value", ["card-1", " x ", "é-ü", "  ", "", "a\x00b", "tab\there", "del\x7f", "x" * 101])
def test_the_documented_external_id_is_the_one_the_parser_accepts(schema, value):
    from detection.parsing import _external_id_error

    documented = schema["components"]["schemas"]["Transaction"]["properties"]["external_id"]
    assert validator(schema, documented).is_valid(value) == (_external_id_error({"external_id": value}) is None)
