"""Train a model from one labelled data file, as a recorded training run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..ml import schema, training
from ..models import ModelVersion, TrainingRun
from . import deployments, training_runs, versions


def train_from_csv(
    *,
    path: str | Path,
    activate: bool,
    actor: str,
    trigger: str = TrainingRun.Trigger.MANUAL,
    config: training.TrainConfig | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ModelVersion:
    """Train on a labelled data file as a TrainingRun and record (and optionally activate) the version;
    for an unusable file, schema.DataValidationError and only the failed run is written."""
    run = training_runs.start_run(trigger=trigger)
    with training_runs.run_session(run, actor=actor, echo=progress, note_failure=False) as session:
        session.step(f"reading {Path(path).name}")
        frame = schema.read_training_csv(path)
        session.step(f"{len(frame)} rows, {int(frame[schema.LABEL].sum())} frauds")
        result = training.train(frame, config or training_runs.train_config(), progress=session.step)
        session.heartbeat.check()
        version = versions.record_version(result=result, training_run=run)
        session.step(f"recorded v{version.version}")
        if activate:
            session.heartbeat.check()
            version = deployments.activate_version(
                version_id=version.pk, actor=actor, reason=f"trained on {Path(path).name}"
            )
            session.step(f"activated v{version.version}")
        session.version = version
    return version
