from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache

from detection.auth import create_key, revoke_key
from detection.models import ApiKey, Transaction
from modelops.ml.schema import FEATURES

ROW = {**{name: 0.0 for name in FEATURES}, "Time": 10, "Amount": 5}


@pytest.fixture
def closed_api(settings):
    settings.SCORING_API_OPEN = False


def post(client, **headers):
    return client.post("/detect-fraud", json.dumps(ROW), content_type="application/json", headers=headers)


def test_without_a_key_the_api_answers_401_with_a_clear_body(client, active_version, closed_api):
    response = post(client)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["error"] == {
        "code": "not_authenticated",
        "message": "an API key is required: send it as 'Authorization: Bearer <key>'",
    }
    assert Transaction.objects.count() == 0


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_a_valid_key_is_accepted_in_either_header(client, active_version, closed_api, header):
    _, key = create_key(name="acquirer")
    value = f"Bearer {key}" if header == "Authorization" else key
    assert post(client, **{header: value}).status_code == 200


def test_a_wrong_key_is_refused(client, active_version, closed_api):
    _, key = create_key(name="acquirer")
    response = post(client, Authorization=f"Bearer {key[:-2]}xx")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "the API key is not valid"


def test_a_revoked_key_stops_working_at_once(client, active_version, closed_api):
    row, key = create_key(name="acquirer")
    assert post(client, Authorization=f"Bearer {key}").status_code == 200
    assert revoke_key(prefix=row.prefix) == 1
    response = post(client, Authorization=f"Bearer {key}")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "the API key was revoked"


def test_only_a_hash_of_the_key_is_stored(db):
    row, key = create_key(name="acquirer")
    row.refresh_from_db()
    assert key not in (row.hashed, row.prefix, row.name)
    assert key.startswith(f"fd_{row.prefix}_")


def test_a_signed_in_analyst_can_use_the_api_from_the_browser(analyst_client, active_version, closed_api):
    assert post(analyst_client).status_code == 200
    assert analyst_client.get("/api/models/active").status_code == 200


def test_a_signed_in_user_without_a_role_cannot_use_the_api(client, active_version, closed_api):
    # The pages refuse such a user; the API must not let them score or read the models either.
    client.force_login(User.objects.create_user("nobody", password="x-1234567"))
    response = post(client)
    assert response.status_code == 403
    assert "detection.review_transaction" in response.json()["error"]["message"]
    assert Transaction.objects.count() == 0
    assert client.get("/api/models/active").status_code == 403
    assert client.get(f"/api/models/{active_version.version}").status_code == 403


def test_an_api_key_needs_no_user_permission(client, active_version, closed_api):
    _, key = create_key(name="acquirer")
    assert client.get("/api/models/active", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_the_open_setting_lets_clients_without_keys_in(client, active_version, settings):
    settings.SCORING_API_OPEN = True
    assert post(client).status_code == 200


def test_a_client_over_its_rate_gets_429_with_retry_after(client, active_version, closed_api, settings):
    settings.SCORING_RATE_LIMIT = "2/min"
    cache.clear()
    _, key = create_key(name="acquirer")
    _, other = create_key(name="issuer")
    codes = [post(client, Authorization=f"Bearer {key}").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = post(client, Authorization=f"Bearer {key}")
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "throttled"
    # Counted per client: another key still gets through.
    assert post(client, Authorization=f"Bearer {other}").status_code == 200
    cache.clear()


def test_an_invented_forwarded_address_does_not_make_a_new_client(client, active_version, settings):
    settings.SCORING_API_OPEN = True
    settings.SCORING_RATE_LIMIT = "2/min"
    cache.clear()
    codes = [post(client, **{"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(3)]
    assert codes == [200, 200, 429]  # all from the connection's address
    cache.clear()


def test_behind_a_trusted_proxy_the_address_it_adds_is_the_client(client, active_version, settings):
    settings.SCORING_API_OPEN = True
    settings.SCORING_RATE_LIMIT = "2/min"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    cache.clear()
    # The client wrote the first entry; the proxy appended the address it saw.
    codes = [post(client, **{"X-Forwarded-For": f"10.0.0.{i}, 192.0.2.7"}).status_code for i in range(3)]
    assert codes == [200, 200, 429]
    assert post(client, **{"X-Forwarded-For": "10.0.0.9, 192.0.2.8"}).status_code == 200
    cache.clear()


def test_the_api_key_command_creates_lists_and_revokes(db, capsys):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("api_key", "create", "acquirer", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("fd_")
    prefix = key[3:].split("_", 1)[0]
    out = StringIO()
    call_command("api_key", "list", stdout=out)
    assert prefix in out.getvalue() and "acquirer" in out.getvalue()
    out = StringIO()
    call_command("api_key", "revoke", prefix, stdout=out)
    assert "revoked" in out.getvalue()


def test_a_browser_session_without_its_csrf_token_gets_403(analyst, active_version, closed_api):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(analyst)
    response = post(browser)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in response.json()["error"]["message"]
    assert Transaction.objects.count() == 0


def test_the_admin_revokes_keys_at_once(client, active_version, closed_api):
    row, key = create_key(name="acquirer")
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    client.post("/admin/detection/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    client.logout()
    assert post(client, Authorization=f"Bearer {key}").status_code == 401


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(
    client, active_version, closed_api, settings
):
    import time

    from django.utils import timezone

    settings.API_KEY_CACHE_SECONDS = 0.3
    row, key = create_key(name="acquirer")
    assert post(client, Authorization=f"Bearer {key}").status_code == 200
    ApiKey.objects.filter(pk=row.pk).update(revoked_at=timezone.now())  # as another worker's revoke does
    time.sleep(0.35)
    response = post(client, Authorization=f"Bearer {key}")
    assert response.status_code == 401 and response.json()["error"]["message"] == "the API key was revoked"
