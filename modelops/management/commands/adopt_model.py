from django.core.management.base import BaseCommand, CommandError

from modelops import services
from modelops.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Activate the newest verified artifact of the models storage (S3 or local), for a fresh "
        "database beside an existing bucket. Does nothing while a model is active."
    )

    def handle(self, *args, **options):
        active = ModelVersion.objects.active().first()
        if active is not None:
            self.stdout.write(f"model v{active.version} is active; nothing to adopt")
            return
        version, skipped = services.adopt_from_storage(actor="command")
        for line in skipped:
            self.stderr.write(f"skipped {line}")
        if version is None:
            raise CommandError("no usable artifact in the models storage")
        self.stdout.write(f"adopted {version.artifact} as v{version.version} and activated it")
