"""The WSGI application as the server calls it: the scoring endpoint's shorter middleware chain
keeps what the endpoint needs (a key or a signed-in user, the request log, security headers),
and every other path keeps the pages' chain. Django's test client always takes the full chain,
so these requests go through the application itself."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from detection.auth import create_key
from fraudsite.handlers import application
from modelops.ml.schema import FEATURES

ROW = {**{name: 0.0 for name in FEATURES}, "Time": 10, "Amount": 5}


@pytest.fixture
def app():
    # As Django's test client does: closing the connection would end the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def call(app, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict, bytes]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(response_headers)

    response = app(environ, start_response)
    try:
        content = b"".join(response)
    finally:
        response.close()
    return answer["status"], answer["headers"], content


def test_scoring_takes_its_own_chain_with_the_key_log_and_security_headers(app, active_version, settings, caplog):
    settings.SCORING_API_OPEN = False
    _, key = create_key(name="client")
    body = json.dumps(ROW).encode()
    assert call(app, "POST", "/detect-fraud", body)[0] == 401
    with caplog.at_level(logging.INFO, logger="fraudsite.requests"):
        status, headers, content = call(app, "POST", "/detect-fraud", body, AUTHORIZATION=f"Bearer {key}")
    assert status == 200, content
    assert json.loads(content)["model_version"] == active_version.version
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert f"id={headers['X-Request-ID']} method=POST path=/detect-fraud status=200" in caplog.text
    assert "X-Frame-Options" not in headers  # the pages' middleware did not run: this is the short chain


def test_other_paths_keep_the_pages_chain(app, db):
    status, headers, _ = call(app, "GET", "/accounts/login/")
    assert status == 200
    assert headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in headers.get("Set-Cookie", "")


def test_a_signed_in_analyst_scores_only_with_the_csrf_token(app, active_version, analyst, client, settings):
    settings.SCORING_API_OPEN = False
    client.force_login(analyst)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    token = "a" * 32  # DRF compares the cookie's token with the header's
    cookies = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={token}"
    body = json.dumps(ROW).encode()
    status, _, content = call(app, "POST", "/detect-fraud", body, COOKIE=cookies)
    assert status == 403 and b"CSRF" in content
    assert call(app, "POST", "/detect-fraud", body, COOKIE=cookies, X_CSRFTOKEN=token)[0] == 200
