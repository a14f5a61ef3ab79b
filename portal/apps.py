from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project package as an app, for its system checks and management commands."""

    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import checks  # noqa: F401 (registers the security system checks)
