from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"

    def ready(self) -> None:
        from audit import audit
        from insights.models import LoadTestRun

        # Who started which load test is audited; its progress is not a change anyone made.
        audit.register(
            LoadTestRun,
            exclude={"payloads", "status", "sent", "summary", "error", "started_at", "finished_at"},
        )
