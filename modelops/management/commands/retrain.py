from django.core.management.base import BaseCommand, CommandError

from modelops import retrain
from modelops.models import TrainingRun


class Command(BaseCommand):
    help = "Retrain now on every accepted data file, compare with the active model, activate if good enough."

    def add_arguments(self, parser):
        parser.add_argument(
            "--backend",
            choices=("local", "dask"),
            default="",
            help="Train in this process (local) or on a Dask cluster (dask); default TRAINING_BACKEND",
        )

    def handle(self, *args, backend, **options):
        run = retrain.retrain(trigger=TrainingRun.Trigger.MANUAL, actor="command", backend=backend)
        if run is None:
            raise CommandError("another training run is running; try again when it ends")
        for line in run.log.splitlines():
            self.stderr.write(f"  {line}")
        active = f", v{run.result_version.version} activated" if run.result_version else ", nothing activated"
        self.stdout.write(f"run {run.pk} {run.status}{active}")
