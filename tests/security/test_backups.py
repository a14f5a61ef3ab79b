"""Backups (D4): a restore drill gives back exactly the rows that were backed up."""

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
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


# -- the compose `backup` service: pg_dump -Fc once a day, the last 14 kept ----------------------

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_dumps_the_portal_database_daily_and_keeps_fourteen() -> None:
    services = compose_services()
    backup, postgres = services["backup"], services["postgres"]
    script = backup["command"][-1]

    assert backup["image"] == postgres["image"] == "postgres:16"
    assert backup["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "backups:/backups" in backup["volumes"]
    assert backup["environment"]["PGHOST"] == "postgres"
    assert backup["environment"]["PGUSER"] == postgres["environment"]["POSTGRES_USER"]
    assert backup["environment"]["PGPASSWORD"] == postgres["environment"]["POSTGRES_PASSWORD"]
    assert backup["environment"]["PGDATABASE"] == postgres["environment"]["POSTGRES_DB"]
    assert backup["environment"]["BACKUP_DIR"] == "/backups"
    assert backup["environment"]["BACKUP_KEEP"] == "14"
    assert backup["environment"]["BACKUP_INTERVAL_SECONDS"] == "86400"
    assert "pg_dump -Fc" in script
    assert "sleep" in script


def psql(database: str, sql: str) -> None:
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1"]
    subprocess.run(
        [*command, "-qc", sql],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def throwaway_database() -> Iterator[str]:
    """A database of its own on the PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth)."""
    if not all(shutil.which(tool) for tool in ("pg_dump", "pg_restore", "psql")):
        pytest.skip("needs pg_dump, pg_restore and psql (apt-get install postgresql-client)")
    try:
        psql("postgres", "SELECT 1")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pytest.skip("needs PostgreSQL at 127.0.0.1:5432, user postgres with trust auth")
    name = f"backup_drill_{os.getpid()}"
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name}")
    try:
        psql(name, "CREATE TABLE drill (id int PRIMARY KEY, note text)")
        psql(name, "INSERT INTO drill VALUES (1, 'kept by the nightly dump')")
        yield name
    finally:
        psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_backup_service_writes_restorable_dumps_and_prunes_the_oldest(
    tmp_path, throwaway_database
) -> None:
    service = compose_services()["backup"]
    script = service["command"][-1].replace("$$", "$")  # compose's escape for a literal $
    folder = tmp_path / "backups"
    environment = os.environ | {
        "PGHOST": "127.0.0.1",
        "PGUSER": "postgres",
        "PGDATABASE": throwaway_database,
        "BACKUP_DIR": str(folder),
        "BACKUP_KEEP": "2",
        "BACKUP_INTERVAL_SECONDS": "1",  # a day in the service; a second here
    }
    log = tmp_path / "backup.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["sh", "-c", script],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Four runs keeping two: the second removal comes right after the fourth dump.
        deadline = time.monotonic() + 90
        while log.read_text().count("backup: removed") < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)

    dumps = sorted(folder.glob("portal-*.dump"))
    text = log.read_text()
    assert len(dumps) == 2, text
    assert all(re.fullmatch(r"portal-\d{8}T\d{6}Z\.dump", dump.name) for dump in dumps)
    assert text.count("backup: wrote") >= 4
    assert "pg_dump failed" not in text
    listing = subprocess.run(
        ["pg_restore", "--list", str(dumps[-1])], capture_output=True, text=True, timeout=30
    )
    assert listing.returncode == 0, listing.stderr
    assert "TABLE public drill" in listing.stdout
    data = subprocess.run(
        ["pg_restore", "--data-only", "--table", "drill", "--file", "-", str(dumps[-1])],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "kept by the nightly dump" in data.stdout
