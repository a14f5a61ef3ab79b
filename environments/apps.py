from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "environments"

    def ready(self) -> None:
        from audit import audit
        from environments import outbound
        from environments.models import Environment

        audit.register(Environment)
        outbound.install()  # S9: every urllib3 (so boto3) connection of this process is checked
