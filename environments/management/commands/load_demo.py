"""`manage.py load_demo`: the demo workspace `make run` starts with. Safe to run again."""

from django.core.management.base import BaseCommand

from endpoints import demo


class Command(BaseCommand):
    help = "Add the demo workspace: the local environment and its demo models, unless there."

    def handle(self, *args: object, **options: object) -> None:
        environment = demo.load()
        models = environment.registered_models.filter(deleted_at__isnull=True).count()
        self.stdout.write(
            f"Demo workspace: environment {environment.name!r} with {models} registered models. "
            "Deploy them from the Endpoints page."
        )
