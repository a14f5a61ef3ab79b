"""`manage.py runtime`: run the local runtime in the foreground."""

from aiohttp import web
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from runtime.server import create_app


class Command(BaseCommand):
    help = "Run the local, SageMaker-compatible inference runtime (Ctrl-C stops it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.LOCAL_RUNTIME_HOST)
        parser.add_argument("--port", type=int, default=settings.LOCAL_RUNTIME_PORT)

    def handle(self, *args: object, host: str, port: int, **options: object) -> None:
        self.stdout.write(f"Local runtime listening on http://{host}:{port}")
        web.run_app(create_app(host, port), host=host, port=port, print=None, access_log=None)
