from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from modelops.management.training_errors import training_errors
from modelops.models import ModelVersion
from modelops.services import adoption, train_file


class Command(BaseCommand):
    help = (
        "Make sure a model is active: do nothing if one is; else train one on --csv (a real "
        "creditcard.csv), or adopt the newest verified artifact of the models storage, or train one "
        "on generated data; and activate it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", help="Labelled data file to train the first model on")
        parser.add_argument("--rows", type=int, default=284_807, help="Rows of generated data when no --csv")

    def handle(self, *args, csv, rows, **options):
        active = ModelVersion.objects.primary().first()
        if active is not None:
            self.stdout.write(f"model v{active.version} is active")
            return
        if not csv:
            version, _skipped = adoption.adopt_from_storage(actor="command")
            if version is not None:
                self.stdout.write(f"model v{version.version} adopted from the models storage and activated")
                return
            csv = str(settings.DATA_DIR / "demo" / "creditcard_synthetic.csv")
            self.stdout.write(f"no model is active: generating {rows} synthetic rows to train the first one")
            call_command("generate_data", rows=rows, out=csv, stdout=self.stdout)
        with training_errors(csv):
            version = train_file.train_from_csv(
                path=csv, activate=True, actor="command", progress=lambda message: self.stderr.write(f"  {message}")
            )
        self.stdout.write(f"model v{version.version} trained on {csv} and activated")
