"""`manage.py ensure_admin`: make sure someone can sign in and manage the portal."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Q

from accounts.roles import Role


class Command(BaseCommand):
    help = "Create an Admin user with a one-time password if the portal has no active Admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: object, username: str, **options: object) -> None:
        User = get_user_model()
        admins = User.objects.filter(is_active=True).filter(
            Q(is_superuser=True) | Q(groups__name=Role.ADMIN.label)
        )
        if admins.exists():
            self.stdout.write("An Admin already exists; no account created.")
            return
        if User.objects.filter(username=username).exists():
            self.stderr.write(
                f"A user named {username!r} exists but is no active Admin. "
                "Pass --username to create another."
            )
            raise SystemExit(1)
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            user = User(username=username, must_change_password=True)
            user.set_password(password)
            user.save()
            user.set_role(Role.ADMIN)
        line = "=" * 64
        self.stdout.write(
            f"\n{line}\n  Admin account created. Sign in with:\n"
            f"    username: {username}\n    password: {password}\n"
            f"  This one-time password is shown only now; you will choose your own\n"
            f"  at first sign-in.\n{line}\n"
        )
