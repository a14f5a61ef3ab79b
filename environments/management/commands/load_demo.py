"""`manage.py load_demo`: the demo workspace `make run` starts with. Safe to run again."""

from django.core.management.base import BaseCommand
from django.db import transaction

from environments.models import Environment


class Command(BaseCommand):
    help = "Add the demo workspace (the local environment) unless it is already there."

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            environment, created = Environment.objects.get_or_create(
                name="local",
                defaults={
                    "kind": Environment.Kind.LOCAL,
                    "description": "The local runtime on this machine: free, instant, no AWS.",
                    "bucket": "portal-demo",
                    "prefix": "portal/",
                },
            )
        state = "added" if created else "already there"
        self.stdout.write(f"Demo workspace: environment {environment.name!r} {state}.")
