from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "environments"

    def ready(self) -> None:
        from audit import audit
        from environments.models import Environment

        audit.register(Environment)
