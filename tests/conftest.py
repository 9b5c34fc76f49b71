"""Fixtures most tests need: throw-away storage folders, a small trained model, an active version."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from modelops.ml import synthetic, training

FIXTURES = Path(__file__).parent / "fixtures"
# Small enough to train in about a second, big enough to tell the original app's rows apart.
SMALL_CONFIG = training.TrainConfig(n_estimators=60)


@pytest.fixture(autouse=True)
def bucket(settings, tmp_path):
    """Local folders for the incoming files, the model artifacts and label files, fresh for each test."""
    root = tmp_path / "bucket"
    for alias in ("incoming", "models", "labels"):
        settings.STORAGES = {
            **settings.STORAGES,
            alias: {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(root / alias)},
            },
        }
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.FRAUD_TRAINING = {**settings.FRAUD_TRAINING, "n_estimators": 60}
    # Most tests are about scoring, not keys: the API is open unless a test closes it.
    settings.SCORING_API_OPEN = True
    yield root


@pytest.fixture(autouse=True)
def slow_heartbeat(settings):
    """Most tests hold their rows in a transaction that is never committed, so the heartbeat
    thread, on a connection of its own, cannot see the training run and takes it for taken over
    at its first beat; a training slowed by a busy machine past the default 30 s then stops as
    abandoned. An hour is longer than any test's training; the heartbeat's own tests set theirs."""
    settings.TRAINING_HEARTBEAT_SECONDS = 3600


@pytest.fixture(autouse=True)
def fresh_model_cache():
    from modelops import model_cache

    model_cache.clear()
    yield
    model_cache.clear()


@pytest.fixture(scope="session")
def original_rows() -> dict:
    """The two rows the original app's tests posted, V-values as JSON strings as its client sent them."""
    return json.loads((FIXTURES / "original_rows.json").read_text())


@pytest.fixture(scope="session")
def training_frame():
    return synthetic.generate(rows=30_000, fraud_rate=0.01, seed=7)


@pytest.fixture(scope="session")
def trained(training_frame) -> training.TrainResult:
    return training.train(training_frame, SMALL_CONFIG)


@pytest.fixture
def active_version(db, trained):
    """A recorded, active model version trained on generated data."""
    from modelops.services import deployments, versions

    version = versions.record_version(result=trained)
    return deployments.activate_version(version_id=version.pk, actor="test", reason="fixture")


@pytest.fixture
def training_csv(tmp_path, training_frame) -> Path:
    path = tmp_path / "creditcard_20260101_000000.csv"
    synthetic.write_csv(training_frame, path)
    return path


def _member_of(group_name: str, username: str):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username=username, password="not-used")
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def analyst(db):
    from detection.roles import ANALYSTS

    return _member_of(ANALYSTS, "ana")


@pytest.fixture
def manager(db):
    from detection.roles import MODEL_MANAGERS

    return _member_of(MODEL_MANAGERS, "max")


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def statements(db):
    """A context manager that lists the SQL statements the database is sent inside it. On SQLite
    they are taken from the driver, which also sees what the scoring path runs on its own cursor
    (common.sqlite.write_transaction); on PostgreSQL from Django's query log."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    @contextlib.contextmanager
    def capture():
        if connection.vendor != "sqlite":
            with CaptureQueriesContext(connection) as context:
                sent: list[str] = []
                yield sent
            sent.extend(query["sql"] for query in context.captured_queries)
            return
        connection.ensure_connection()
        sent = []
        connection.connection.set_trace_callback(sent.append)
        try:
            yield sent
        finally:
            connection.connection.set_trace_callback(None)

    return capture
