from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the local demo's admin account once, with a generated password kept in DATA_DIR, "
        "and print how to sign in. No password is ever part of the repository."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        users = get_user_model()
        password_file = settings.DATA_DIR / "demo_password"
        if not users.objects.filter(username=username).exists():
            password = _valid_password(users(username=username))
            users.objects.create_superuser(username=username, email="", password=password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        if password_file.exists():
            self.stdout.write(f"sign in as '{username}' with password {password_file.read_text().strip()}")
        else:
            self.stdout.write(f"sign in as '{username}' (its password was set by someone, not generated here)")


def _valid_password(user) -> str:
    """A generated password that the password rules accept for ``user``; a random one almost
    always is, but one that happened to be all digits, say, is drawn again."""
    while True:
        password = secrets.token_urlsafe(12)
        try:
            password_validation.validate_password(password, user)
        except ValidationError:
            continue
        return password
