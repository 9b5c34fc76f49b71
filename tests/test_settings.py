from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from fraudsite import settings as project_settings


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (project_settings.env_bool, "yes", True),
        (project_settings.env_bool, "0", False),
        (project_settings.env_int, "42", 42),
        (project_settings.env_float, "0.5", 0.5),
    ],
)
def test_env_helpers_read_typed_values(monkeypatch, helper, value, expected):
    monkeypatch.setenv("SOME_SETTING", value)
    assert helper("SOME_SETTING", None) == expected


@pytest.mark.parametrize("helper", [project_settings.env_bool, project_settings.env_int, project_settings.env_float])
def test_env_helpers_fail_loudly_on_a_bad_value(monkeypatch, helper):
    monkeypatch.setenv("SOME_SETTING", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_SETTING must be"):
        helper("SOME_SETTING", None)


def test_env_helpers_fall_back_to_the_default(monkeypatch):
    monkeypatch.delenv("SOME_SETTING", raising=False)
    assert project_settings.env_int("SOME_SETTING", 7) == 7


def test_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("SOME_SETTING", "")
    assert project_settings.env_str("SOME_SETTING", "fallback") == "fallback"


def run_check(tmp_path, **env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "PRODUCTION")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=root,
        env={**clean, "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
    )


def test_production_settings_pass_check_deploy(tmp_path):
    done = run_check(
        tmp_path,
        PRODUCTION="true",
        SECRET_KEY="k" * 20 + "-production-secret-" + "z" * 20,
        ARTIFACT_SIGNING_KEY="a" * 20 + "-signing-key-" + "b" * 20,
        ALLOWED_HOSTS="fraud.example.com",
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_production_refuses_to_start_without_an_artifact_signing_key_and_a_short_one_anywhere(tmp_path):
    done = run_check(tmp_path, PRODUCTION="true", SECRET_KEY="x" * 60, ALLOWED_HOSTS="fraud.example.com")
    assert "ARTIFACT_SIGNING_KEY must be set in production" in done.stderr
    done = run_check(tmp_path, ARTIFACT_SIGNING_KEY="short")
    assert "ARTIFACT_SIGNING_KEY (and each old key) must be at least 32 characters" in done.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    done = run_check(tmp_path, PRODUCTION="true", ALLOWED_HOSTS="fraud.example.com")
    assert done.returncode != 0
    assert "SECRET_KEY must be set in production" in done.stderr


def test_production_refuses_debug(tmp_path):
    done = run_check(tmp_path, PRODUCTION="true", DEBUG="true", SECRET_KEY="x" * 60)
    assert "DEBUG must be off in production" in done.stderr


def setting_under(tmp_path, expression: str, **env) -> str:
    """repr of a settings expression in a fresh process with only ``env`` set."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", f"from django.conf import settings; print(repr({expression}))"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "fraudsite.settings", "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_rate_limit_can_be_switched_off(tmp_path):
    assert setting_under(tmp_path, "settings.SCORING_RATE_LIMIT", SCORING_RATE_LIMIT="off") == "''"


def test_training_threads_come_from_the_environment(tmp_path):
    expression = "settings.FRAUD_TRAINING['nthread']"
    assert setting_under(tmp_path, expression) == "0"
    assert setting_under(tmp_path, expression, TRAIN_THREADS="1") == "1"
