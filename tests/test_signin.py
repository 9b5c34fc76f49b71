"""Sign-in: password rules, and the lockout after repeated wrong passwords (per user name and
client address), on the sign-in page and the admin's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

SIGN_IN = "/accounts/login/"
PASSWORD = "a long passphrase"
HERE = "198.51.100.7"
ELSEWHERE = "203.0.113.5"


@pytest.fixture
def ana(django_user_model):
    return django_user_model.objects.create_user("ana", password=PASSWORD)


def sign_in(client, password, *, address=HERE, username="ana", url=SIGN_IN, **headers):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, times, **kwargs):
    return [sign_in(client, "wrong password", **kwargs) for _ in range(times)][-1]


# --- password rules


@pytest.mark.parametrize("weak", ["1", "12345678", "password", "short"])
def test_a_weak_password_is_refused(weak):
    with pytest.raises(ValidationError):
        password_validation.validate_password(weak)


def test_a_password_like_the_user_name_is_refused(django_user_model):
    with pytest.raises(ValidationError):
        password_validation.validate_password("ana-lytics", django_user_model(username="ana-lytics"))


def test_a_long_uncommon_password_is_accepted():
    password_validation.validate_password("marble kettle northward")


def test_the_demo_users_generated_password_passes_the_rules(db, settings, tmp_path, monkeypatch):
    import secrets

    from django.contrib.auth.models import User

    settings.DATA_DIR = tmp_path
    drawn = iter(["1234567890123456", "marble-kettle-northward"])  # the first is all digits
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    call_command("ensure_demo_user", stdout=open(os.devnull, "w"))  # noqa: SIM115
    password = (tmp_path / "demo_password").read_text().strip()
    assert password == "marble-kettle-northward"
    admin = User.objects.get(username="admin")
    assert admin.check_password(password)
    password_validation.validate_password(password, admin)


def test_a_real_demo_password_passes_the_rules(db, settings, tmp_path):
    from django.contrib.auth.models import User

    settings.DATA_DIR = tmp_path
    call_command("ensure_demo_user", stdout=open(os.devnull, "w"))  # noqa: SIM115
    password_validation.validate_password((tmp_path / "demo_password").read_text().strip(), User.objects.get())


# --- lockout


def test_wrong_passwords_lock_the_user_name_out_from_that_address(client, ana):
    limit = settings.AXES_FAILURE_LIMIT
    assert fail(client, limit - 1).status_code == 200  # the form again, with its error
    locked = fail(client, 1)
    assert locked.status_code == 429
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"Too many failed sign-ins. Try again in {minutes} minutes." in " ".join(locked.content.decode().split())
    assert "<header>" in locked.content.decode()  # the house page, not a bare message
    # Even the right password is refused now, and a forged X-Forwarded-For changes nothing, as
    # no proxy is trusted.
    assert sign_in(client, PASSWORD).status_code == 429
    assert sign_in(client, PASSWORD, HTTP_X_FORWARDED_FOR=ELSEWHERE).status_code == 429
    assert sign_in(client, PASSWORD, url="/admin/login/").status_code == 429
    assert not signed_in(client)


def test_the_admin_sign_in_locks_out_too(client, ana):
    ana.is_staff = True
    ana.save()
    assert fail(client, settings.AXES_FAILURE_LIMIT, url="/admin/login/").status_code == 429
    assert sign_in(client, PASSWORD, url="/admin/login/").status_code == 429
    assert sign_in(client, PASSWORD).status_code == 429


def test_a_lockout_holds_only_for_that_address_and_that_user_name(client, ana, django_user_model):
    django_user_model.objects.create_user("max", password=PASSWORD)
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert sign_in(client, PASSWORD, address=ELSEWHERE).status_code == 302
    assert signed_in(client)
    client.logout()
    assert sign_in(client, PASSWORD, username="max").status_code == 302


def test_a_successful_sign_in_forgets_the_earlier_failures(client, ana):
    limit = settings.AXES_FAILURE_LIMIT
    fail(client, limit - 1)
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()
    assert fail(client, limit - 1).status_code == 200
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, ana):
    from axes.models import AccessAttempt

    fail(client, settings.AXES_FAILURE_LIMIT)
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert sign_in(client, PASSWORD).status_code == 302


def test_an_operator_lifts_a_lockout_by_user_name(client, ana):
    fail(client, settings.AXES_FAILURE_LIMIT)
    call_command("axes_reset_username", "ana", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert sign_in(client, PASSWORD).status_code == 302


def test_the_limit_and_cool_off_come_from_the_environment(tmp_path):
    done = _in_settings(
        tmp_path,
        "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME)",
        SIGNIN_FAILURE_LIMIT="7",
        SIGNIN_LOCKOUT_MINUTES="30",
    )
    assert done == "7 0:30:00"


# --- the client's address behind proxies


CASES = [
    {"REMOTE_ADDR": "10.0.0.9"},
    {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "203.0.113.5"},
    {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "192.168.1.20"},
    {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 203.0.113.5"},
    {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "not-an-address, 198.51.100.7, 203.0.113.5"},
    {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 5.6.7.8, 198.51.100.7, 203.0.113.5"},
    {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "not-an-address, 203.0.113.5"},
]


@pytest.mark.parametrize("proxies", [0, 1, 2])
def test_the_lockout_finds_the_address_the_rate_limit_finds(tmp_path, proxies):
    """Whatever X-Forwarded-For a client sends, a sign-in is counted under the address that the
    API's rate limit counts it under, for the number of proxies the deployment trusts; an entry
    that is no address (which no proxy wrote) counts as the connection's."""
    script = f"""
from axes.helpers import get_client_ip_address
from django.test import RequestFactory
from detection.rate_limit import ClientRateThrottle
out = []
for meta in {CASES!r}:
    request = RequestFactory().get("/", **meta)
    out.append([get_client_ip_address(request), ClientRateThrottle().get_ident(request)])
print(json.dumps(out))
"""
    pairs = json.loads(_in_settings(tmp_path, script, TRUSTED_PROXIES=str(proxies)))
    for meta, (lockout, rate_limit) in zip(CASES, pairs, strict=True):
        assert lockout == (meta["REMOTE_ADDR"] if rate_limit == "not-an-address" else rate_limit), meta
    if proxies == 0:
        assert {lockout for lockout, _ in pairs} == {"10.0.0.9"}  # no header is believed
    else:
        assert pairs[3][0] == ["198.51.100.7", "203.0.113.5"][-proxies]


def _in_settings(data_dir: Path, code: str, **env) -> str:
    root = Path(__file__).resolve().parent.parent
    clean = {k: v for k, v in os.environ.items() if k not in ("TRUSTED_PROXIES", "PRODUCTION", "DEBUG")}
    prelude = "import json, django; django.setup(); from django.conf import settings\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=root,
        env={**clean, "DJANGO_SETTINGS_MODULE": "fraudsite.settings", "DATA_DIR": str(data_dir), **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
