from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from modelops import model_cache
from modelops.ml import reference, schema
from modelops.ml.artifact import ArtifactError
from modelops.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Compute the monitoring reference of a version trained before references were recorded, from a "
        "labelled file like its training data: its rows' quantile bins, and the version's scores on them."
    )

    def add_arguments(self, parser):
        parser.add_argument("version", type=int)
        parser.add_argument("--csv", required=True, help="A data file like the version's training data")

    def handle(self, *args, version, csv, **options):
        found = ModelVersion.objects.filter(version=version).first()
        if found is None:
            raise CommandError(f"no model version {version}")
        try:
            frame = schema.read_training_csv(Path(csv), require_fraud=False)
        except (OSError, schema.DataValidationError) as exc:
            raise CommandError(f"{csv}: {exc}") from None
        try:
            bundle = model_cache.loaded(version_id=found.pk, sha256=found.sha256, name=found.artifact)
        except ArtifactError as exc:
            raise CommandError(f"v{version}'s artifact cannot be used: {exc}") from None
        values = frame[list(schema.FEATURES)].to_numpy(dtype="float64")
        found.reference = reference.build(values, bundle.predict_proba(values), threshold=found.threshold)
        found.save(update_fields=["reference"])
        self.stdout.write(f"v{version}: reference computed from {len(frame):,} rows of {Path(csv).name}")
