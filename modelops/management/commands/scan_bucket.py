from django.core.management.base import BaseCommand, CommandError

from modelops import scan


class Command(BaseCommand):
    help = "Scan the incoming storage for new data files now (what the schedule does), without retraining."

    def handle(self, *args, **options):
        result = scan.scan_incoming()
        for name in result.accepted:
            self.stdout.write(f"accepted {name}")
        for name in result.rejected:
            self.stdout.write(f"rejected {name}")
        for name in result.unreadable:
            self.stderr.write(f"could not read {name}; it will be tried again")
        if result.storage_failed:
            raise CommandError(f"scan: {result.summary()}; the next scan tries again")
        self.stdout.write(f"scan: {result.summary()}")
