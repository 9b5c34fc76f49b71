from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from modelops import artifacts
from modelops.models import ModelEvent, ModelVersion


def adopt() -> str:
    out = StringIO()
    call_command("adopt_model", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_fresh_database_adopts_the_artifact_from_the_bucket(db, trained):
    name, sha256 = artifacts.store(trained.bundle)
    assert adopt().startswith(f"adopted {name} as v1")
    version = ModelVersion.objects.active().get()
    assert version.sha256 == sha256
    assert version.threshold == trained.bundle.threshold
    assert ModelEvent.objects.get().reason.startswith("adopted from the models storage")


def test_an_altered_artifact_is_not_adopted(db, trained, bucket):
    name, _ = artifacts.store(trained.bundle)
    path = bucket / "models" / name
    path.write_bytes(path.read_bytes().replace(b'"threshold":', b'"threshold": ', 1))
    with pytest.raises(CommandError, match="no usable artifact"):
        adopt()
    assert not ModelVersion.objects.exists()


def test_nothing_is_adopted_while_a_model_is_active(active_version):
    assert adopt() == f"model v{active_version.version} is active; nothing to adopt\n"
