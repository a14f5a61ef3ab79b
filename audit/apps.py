from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from audit import audit

        audit.register(get_user_model(), exclude={"last_login"}, masked={"password"})
