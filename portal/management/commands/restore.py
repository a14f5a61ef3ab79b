"""`manage.py restore` (`make restore`): put a backup back, after backing up what is there."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.management import backups


class Command(BaseCommand):
    help = (
        "Replace the database's contents with a backup (the newest one unless a file is named). "
        "Stop the web server, worker, beat and runtime first. What the database held is backed "
        "up first, as <timestamp>-before-restore."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", nargs="?", help="A file under var/backups/ (default: newest)")
        parser.add_argument("--database", default="default")

    def handle(self, *args: object, backup: str | None, database: str, **options: object) -> None:
        try:
            path = Path(backup) if backup else backups.latest()
            safety = backups.restore(path, database)
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        dump = backups.canonical_dump(database)
        rows = sum(len(table) for table in dump.values())
        self.stdout.write(f"Restored {rows} rows from {path}")
        self.stdout.write(f"Checksum of the data: {backups.checksum(dump)}")
        self.stdout.write(f"What the database held before is kept in {safety}")
