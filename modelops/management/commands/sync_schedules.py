from django.core.management.base import BaseCommand

from modelops import schedules


class Command(BaseCommand):
    help = "Write the schedules declared in modelops/schedules.py to the task scheduler (idempotent)."

    def handle(self, *args, **options):
        changed = schedules.sync()
        self.stdout.write("; ".join(changed) if changed else "schedules are up to date")
