"""Backups (D4): a restore drill gives back exactly the rows that were backed up."""

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import User
from audit.models import AuditEntry
from environments.models import Environment
from portal.management import backups
from tests.factories import EnvironmentFactory, UserFactory

pytestmark = [pytest.mark.security, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


def row_counts() -> dict[str, int]:
    return {table: len(rows) for table, rows in backups.canonical_dump().items()}


def test_restore_drill_gives_back_equal_row_counts_and_an_equal_checksum(
    backup_dir, capsys
) -> None:
    for number in range(3):
        EnvironmentFactory(name=f"env-{number}", description=f"team {number} ✓")
    UserFactory.create_batch(2)
    counts, before = row_counts(), backups.checksum(backups.canonical_dump())

    call_command("backup")
    printed = capsys.readouterr().out
    Environment.objects.filter(name="env-0").delete()
    Environment.objects.filter(name="env-1").update(description="changed after the backup")
    EnvironmentFactory(name="added-after-the-backup")
    User.objects.all().delete()
    assert backups.checksum(backups.canonical_dump()) != before

    call_command("restore")

    assert row_counts() == counts
    assert backups.checksum(backups.canonical_dump()) == before
    assert before in printed  # `make backup` prints the checksum a drill compares against
    assert Environment.objects.get(name="env-1").description == "team 1 ✓"
    assert not Environment.objects.filter(name="added-after-the-backup").exists()
    assert AuditEntry.objects.filter(object_repr="added-after-the-backup").count() == 0


def test_a_restore_first_backs_up_what_the_database_held(backup_dir) -> None:
    EnvironmentFactory(name="kept-before")
    first = backups.backup()
    EnvironmentFactory(name="made-after-the-backup")
    after = backups.checksum(backups.canonical_dump())

    safety = backups.restore(first)
    backups.restore(safety)

    assert "-before-restore" in safety.name
    assert backups.checksum(backups.canonical_dump()) == after
    assert Environment.objects.filter(name="made-after-the-backup").exists()


def test_backups_are_private_files_named_by_time(backup_dir) -> None:
    path = backups.backup()

    assert path.parent == backup_dir
    assert path.stat().st_mode & 0o077 == 0
    assert backups.latest() == path


def test_restoring_a_missing_or_foreign_file_says_why_and_changes_nothing(
    backup_dir, tmp_path
) -> None:
    EnvironmentFactory(name="untouched")
    before = backups.checksum(backups.canonical_dump())
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a backup")

    with pytest.raises(backups.BackupError, match="There is no backup"):
        backups.restore(tmp_path / "nothing-here.sqlite3")
    with pytest.raises(backups.BackupError, match="is not a"):
        backups.restore(foreign)

    assert backups.checksum(backups.canonical_dump()) == before


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the damaged-file check is SQLite's")
def test_a_damaged_sqlite_backup_is_refused_before_the_database_is_touched(backup_dir) -> None:
    EnvironmentFactory(name="untouched")
    path = backups.backup()
    before = backups.checksum(backups.canonical_dump())
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))

    with pytest.raises(backups.BackupError):
        backups.restore(path)

    assert backups.checksum(backups.canonical_dump()) == before
