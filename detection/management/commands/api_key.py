from django.core.management.base import BaseCommand, CommandError

from detection.auth import create_key, revoke_key
from detection.models import ApiKey


class Command(BaseCommand):
    help = "Create, list or revoke API keys of the scoring API."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key; it is printed once and never stored")
        create.add_argument("name", help="Who uses it")
        create.add_argument("--label", action="store_true", help="It may send labels (POST /api/labels)")
        actions.add_parser("list", help="List keys (prefixes only)")
        revoke = actions.add_parser("revoke", help="Revoke a key by its prefix; it stops working at once")
        revoke.add_argument("prefix")

    def handle(self, *args, action, **options):
        if action == "create":
            row, key = create_key(name=options["name"], can_label=options["label"])
            self.stderr.write(f"API key {row.prefix} for {row.name}; store it now, it cannot be shown again:")
            self.stdout.write(key)
        elif action == "list":
            for row in ApiKey.objects.order_by("created_at"):
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
                self.stdout.write(f"{row.prefix}  {row.name}  created {row.created_at:%Y-%m-%d %H:%M}  {state}")
        elif revoke_key(prefix=options["prefix"]):
            self.stdout.write(f"revoked {options['prefix']}")
        else:
            raise CommandError(f"no active key with prefix {options['prefix']}")
