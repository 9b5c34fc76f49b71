from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from modelops.management.training_errors import training_errors
from modelops.services import train_file, training_runs


class Command(BaseCommand):
    help = "Train a model on a labelled CSV (Time, V1..V28, Amount, Class) and record it as a new version."

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="Path of the labelled data file")
        parser.add_argument("--activate", action="store_true", help="Make the new version the active one")
        parser.add_argument(
            "--trees",
            type=int,
            help=(
                "Trees of each validated fit (default from settings); "
                "the refit on training + validation rows grows about a quarter more"
            ),
        )

        parser.add_argument(
            "--backend",
            choices=("local", "dask"),
            default="",
            help="Train in this process (local) or on a Dask cluster (dask); default TRAINING_BACKEND",
        )

    def handle(self, *args, csv, activate, trees, backend, **options):
        overrides = {"n_estimators": trees} if trees else {}
        if (backend or settings.TRAINING_BACKEND) == "dask":
            from modelops import dask_backend  # only a run on a cluster imports dask

            train = dask_backend.train_from_path
        else:
            train = train_file.train_from_csv
        with training_errors(csv):
            version = train(
                path=csv,
                activate=activate,
                actor="command",
                config=training_runs.train_config(**overrides),
                progress=lambda message: self.stderr.write(f"  {message}"),
            )
        m = version.metrics
        self.stdout.write(
            f"v{version.version} ({version.state}): {version.training_rows} rows, {version.training_frauds} frauds; "
            f"hold-out F1 {m['f1']:.4f}, precision {m['precision']:.4f}, recall {m['recall']:.4f}, "
            f"AUPRC {m['auprc']:.4f}, threshold {version.threshold:.4f}, strategy {version.params['strategy']}"
        )
