"""Data migrations carry every existing row over."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("modelops", "0008_scan_permission")]
AFTER = [("modelops", "0009_version_kind_and_training_run")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_run_kind_and_contents_kept_in_params_become_columns():
    old = migrate(BEFORE)
    TrainingRun = old.get_model("modelops", "TrainingRun")
    ModelVersion = old.get_model("modelops", "ModelVersion")
    run = TrainingRun.objects.create(trigger="manual", status="succeeded")
    common = {"artifact": "a.json", "sha256": "0" * 64, "threshold": 0.5}
    ModelVersion.objects.create(
        version=1,
        **common,
        params={"trees": 10, "kind": "warm_start", "training_run": run.pk, "data_files_sha256": ["f" * 64]},
    )
    ModelVersion.objects.create(version=2, **common, params={"trees": 11, "adopted_from": "a.json"})
    ModelVersion.objects.create(version=3, **common, params={"trees": 12, "training_run": 999})  # run gone
    try:
        new = migrate(AFTER)
        rows = new.get_model("modelops", "ModelVersion").objects.order_by("version")
        found = [(v.kind, v.training_run_id, v.data_files_sha256, v.params) for v in rows]
        assert found == [
            ("warm_start", run.pk, ["f" * 64], {"trees": 10}),
            ("adopted", None, [], {"trees": 11}),
            ("file", None, [], {"trees": 12}),
        ]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_active_version_becomes_the_primary_deployment():
    old = migrate(AFTER)
    ModelVersion = old.get_model("modelops", "ModelVersion")
    common = {"artifact": "a.json", "sha256": "0" * 64, "threshold": 0.5}
    for number, status in enumerate(["retired", "active", "rejected", "candidate"], start=1):
        ModelVersion.objects.create(version=number, status=status, **common)
    try:
        new = migrate([("modelops", "0010_deployments")])
        rows = new.get_model("modelops", "ModelVersion").objects.order_by("version")
        assert [v.status for v in rows] == ["accepted", "accepted", "rejected", "candidate"]
        deployments = new.get_model("modelops", "Deployment").objects.values_list("version__version", "role")
        assert list(deployments) == [(2, "primary")]
        back = migrate(AFTER).get_model("modelops", "ModelVersion").objects.order_by("version")
        assert [v.status for v in back] == ["retired", "active", "rejected", "candidate"]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
