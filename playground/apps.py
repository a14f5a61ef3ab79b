from django.apps import AppConfig


class PlaygroundConfig(AppConfig):
    name = "playground"

    def ready(self) -> None:
        from audit import audit
        from playground.models import PinnedExample

        audit.register(PinnedExample)
