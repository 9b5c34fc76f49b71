from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connections
from django.urls import path

from detection.models import ApiKey
from fraudsite import urls as project_urls
from modelops.ml.schema import FEATURES

ROW = {**{name: 0.0 for name in FEATURES}, "Time": 10, "Amount": 5}


def test_healthz_answers_while_the_process_is_up(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_needs_an_active_model(client, db):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "no model version is active"}


def test_readyz_is_ready_with_a_loaded_model(client, active_version):
    assert client.get("/readyz").json() == {"status": "ready", "model_version": active_version.version}


def test_readyz_goes_503_when_the_database_is_unreachable_and_back(client, active_version, monkeypatch, caplog):
    database = connections["default"]

    def unreachable(*args, **kwargs):
        from django.db import OperationalError

        # The driver's text names how the database is reached: not for an open probe.
        raise OperationalError('connection to server at "10.1.2.3", port 5432 failed: password for user "fraud"')

    # A database that refuses connections cannot be caused inside the test's own transaction.
    monkeypatch.setattr(database, "cursor", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "database unreachable; the server log has the error"
    assert "10.1.2.3" in caplog.text
    monkeypatch.undo()
    assert client.get("/readyz").status_code == 200


def test_readyz_goes_503_when_the_active_artifact_is_corrupted(client, active_version, caplog):
    storage = storages["models"]
    storage.delete(active_version.artifact)
    storage.save(active_version.artifact, ContentFile(b"{}"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "the active model cannot be loaded; the server log has the error"
    assert "checksum" in caplog.text


def test_a_503_names_no_path_and_the_log_has_the_detail_under_the_request_id(client, active_version, bucket, caplog):
    # An artifact replaced by a folder: the error names its full local path.
    path = bucket / "models" / active_version.artifact
    path.unlink()
    path.mkdir()
    response = client.post("/detect-fraud", json.dumps(ROW), content_type="application/json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error == {
        "code": "model_unavailable",
        "message": "the active model cannot be loaded; the server log has the error under the request id",
        "request_id": response["X-Request-ID"],
    }
    assert str(bucket) not in response.content.decode()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"id={error['request_id']} the")]
    assert active_version.artifact in line


def test_the_active_model_metadata(client, active_version):
    body = client.get("/api/models/active").json()
    assert body["version"] == active_version.version
    assert (body["status"], body["role"]) == ("primary", "primary")
    assert body["features"] == list(FEATURES)
    assert body["threshold"] == active_version.threshold
    assert body["metrics"]["auprc"] == active_version.metrics["auprc"]
    assert body["data_files"] == []


def test_a_version_by_number_and_an_unknown_one(client, active_version):
    assert client.get(f"/api/models/{active_version.version}").json()["sha256"] == active_version.sha256
    missing = client.get("/api/models/999")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_model_metadata_needs_a_key_when_the_api_is_closed(client, active_version, settings):
    settings.SCORING_API_OPEN = False
    assert client.get("/api/models/active").status_code == 401


def test_a_body_over_the_limit_gets_413_naming_it(client, active_version, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    response = client.post("/detect-fraud", json.dumps([ROW] * 20), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": "the body is over 1000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)",
    }


def test_every_response_carries_a_request_id_and_keeps_a_sane_callers_id(client, db):
    assert len(client.get("/healthz")["X-Request-ID"]) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"})["X-Request-ID"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-ID": "<script>"})["X-Request-ID"] != "<script>"
    # A trailing newline would make the response header invalid (Django refuses to set it).
    assert len(client.get("/healthz", headers={"X-Request-ID": "abc-123\n"})["X-Request-ID"]) == 32


def test_one_log_line_per_request_with_status_latency_and_version(client, active_version, caplog):
    with caplog.at_level(logging.INFO, logger="fraudsite.requests"):
        response = client.post("/detect-fraud", json.dumps(ROW), content_type="application/json")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "fraudsite.requests"]
    assert line.startswith(f"id={response['X-Request-ID']} method=POST path=/detect-fraud status=200 ms=")
    assert line.endswith(f"model_version={active_version.version}")


def test_a_path_holding_a_newline_or_spaces_cannot_forge_a_log_line(client, db, caplog):
    with caplog.at_level(logging.INFO, logger="fraudsite.requests"):
        client.get("/nothing%0Aid=forged%20method=POST%20path=/admin/%20status=200")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "fraudsite.requests"]
    assert "\n" not in line
    assert line.count(" path=") == line.count(" status=") == 1  # as sent, escaped: one field each
    assert " path=/nothing%0Aid%3Dforged%20method%3DPOST%20path%3D/admin/%20status%3D200 status=404 " in line


def test_a_page_not_found_is_no_unhandled_error_in_the_log(analyst_client, db, caplog):
    # Http404 (and Django's other answers by exception) reach the middleware's process_exception.
    with caplog.at_level(logging.INFO, logger="fraudsite.requests"):
        assert analyst_client.get("/review/999999/").status_code == 404
    assert [r.levelname for r in caplog.records if r.name == "fraudsite.requests"] == ["INFO"]


def boom(request):
    raise RuntimeError("secret detail: password=hunter2")


@pytest.fixture
def failing_route(settings):
    from django.urls import clear_url_caches

    class Urls:
        urlpatterns = [path("api/boom", boom), *project_urls.urlpatterns]

    settings.ROOT_URLCONF = Urls
    clear_url_caches()
    yield
    clear_url_caches()


def test_a_500_answers_json_with_the_request_id_and_no_detail(db, failing_route, caplog):
    from django.test import Client

    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="fraudsite.requests"):
        response = client.get("/api/boom")
    assert response.status_code == 500
    body = response.json()["error"]
    assert body["code"] == "server_error" and body["request_id"] == response["X-Request-ID"]
    assert "hunter2" not in response.content.decode()
    assert any(response["X-Request-ID"] in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_staff_user_who_may_only_view_keys_cannot_revoke_them(client, db):
    from django.contrib.auth.models import Permission

    from detection.auth import create_key

    row, _ = create_key(name="acquirer")
    auditor = User.objects.create_user("auditor", password="pw-auditor-1", is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    client.force_login(auditor)
    client.post("/admin/detection/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    assert ApiKey.objects.get(pk=row.pk).revoked_at is None
    auditor.user_permissions.add(Permission.objects.get(codename="change_apikey"))
    client.post("/admin/detection/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    assert ApiKey.objects.get(pk=row.pk).revoked_at is not None


def test_the_admin_creates_a_key_and_shows_it_once(client, db):
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    response = client.post("/admin/detection/apikey/add/", {"name": "acquirer"}, follow=True)
    row = ApiKey.objects.get()
    assert f"fd_{row.prefix}_" in response.content.decode()
