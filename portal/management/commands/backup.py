"""`manage.py backup` (`make backup`): a consistent copy of the database under var/backups/."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.management import backups


class Command(BaseCommand):
    help = "Back up the database to var/backups/<timestamp> (SQLite online backup or pg_dump -Fc)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default")

    def handle(self, *args: object, database: str, **options: object) -> None:
        try:
            path = backups.backup(database)
        except backups.BackupError as error:
            raise CommandError(str(error)) from error
        dump = backups.canonical_dump(database)
        rows = sum(len(table) for table in dump.values())
        self.stdout.write(f"Backed up {rows} rows to {path}")
        self.stdout.write(f"Checksum of the data: {backups.checksum(dump)}")
