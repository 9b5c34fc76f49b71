from django.core.management.base import BaseCommand, CommandError

from modelops.models import ModelVersion
from modelops.services import adoption


class Command(BaseCommand):
    help = (
        "Activate the newest verified artifact of the models storage (S3 or local), for a fresh "
        "database beside an existing bucket. Does nothing while a model is active."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-unsigned",
            action="store_true",
            help=(
                "Sign the artifacts stored before artifacts were signed: recorded versions' artifacts, "
                "each checked against its recorded sha256, and the one adopted. Each is an audit event."
            ),
        )

    def handle(self, *args, allow_unsigned=False, **options):
        if allow_unsigned:
            for line in adoption.sign_unsigned_versions(actor="command"):
                self.stdout.write(line)
        active = ModelVersion.objects.primary().first()
        if active is not None:
            self.stdout.write(f"model v{active.version} is active; nothing to adopt")
            return
        version, skipped = adoption.adopt_from_storage(actor="command", allow_unsigned=allow_unsigned)
        for line in skipped:
            self.stderr.write(f"skipped {line}")
        if version is None:
            raise CommandError("no usable artifact in the models storage")
        self.stdout.write(f"adopted {version.artifact} as v{version.version} and activated it")
