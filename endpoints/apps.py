from django.apps import AppConfig


class EndpointsConfig(AppConfig):
    name = "endpoints"

    def ready(self) -> None:
        from audit import audit
        from endpoints.models import Endpoint, RegisteredModel

        audit.register(RegisteredModel)
        audit.register(Endpoint, exclude={"polled_at", "variants_state"})
