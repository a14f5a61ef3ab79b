"""`manage.py runtime`: run the local runtime in the foreground."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from runtime import front, new_loop
from runtime.server import create_app


class Command(BaseCommand):
    help = "Run the local, SageMaker-compatible inference runtime (Ctrl-C stops it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.LOCAL_RUNTIME_HOST)
        parser.add_argument("--port", type=int, default=settings.LOCAL_RUNTIME_PORT)
        parser.add_argument(
            "--allowed-host",
            action="append",
            default=[],
            help="Another Host name to answer, e.g. the compose service name. Repeatable.",
        )

    def handle(
        self, *args: object, host: str, port: int, allowed_host: list[str], **options: object
    ) -> None:
        self.stdout.write(f"Local runtime listening on http://{host}:{port}")
        app = create_app(
            port,
            state_dir=settings.LOCAL_RUNTIME_STATE_DIR,
            storage_root=settings.LOCAL_S3_ROOT,
            extra_hosts=allowed_host,
            startup_timeout=settings.LOCAL_RUNTIME_STARTUP_TIMEOUT,
            invocation_timeout=settings.LOCAL_RUNTIME_INVOCATION_TIMEOUT,
            max_instances=settings.LOCAL_RUNTIME_MAX_INSTANCES,
            multi_model_budget_bytes=int(settings.LOCAL_RUNTIME_MULTI_MODEL_BUDGET_MB * 1024**2),
            serverless_idle_seconds=settings.LOCAL_RUNTIME_SERVERLESS_IDLE_SECONDS,
            autoscaling_period=settings.LOCAL_RUNTIME_AUTOSCALING_PERIOD,
            warm_images=tuple(settings.LOCAL_RUNTIME_WARM_IMAGES),
            model_memory_mb=settings.LOCAL_RUNTIME_MODEL_MEMORY_MB,
        )
        front.run(app, host, port, new_loop())
