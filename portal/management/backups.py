"""Backing up and restoring the portal's database (`make backup`, `make restore`).

SQLite is copied with its online backup API, page by page inside a read transaction, so the
copy is consistent even while the web server, worker, beat and runtime keep writing (a file
copy of a live WAL database is not). PostgreSQL is dumped with `pg_dump -Fc` and restored with
`pg_restore` in one transaction. Backups are files under var/backups/<timestamp>.<ext>.
"""

import hashlib
import json
import os
import sqlite3
import subprocess  # nosec B404 # pg_dump and pg_restore, with argument lists, never a shell
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections

SUFFIXES = {"sqlite": ".sqlite3", "postgresql": ".dump"}


class BackupError(Exception):
    """A backup or restore could not be made; the message says why in plain words."""


def backup_dir() -> Path:
    return Path(settings.BACKUP_DIR)


def vendor(alias: str = "default") -> str:
    found = connections[alias].vendor
    if found not in SUFFIXES:
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {found}.")
    return found


def backup(alias: str = "default", folder: Path | None = None, label: str = "") -> Path:
    """Write a consistent copy of the database to `folder`/<timestamp><label><suffix>."""
    kind = vendor(alias)
    folder = folder or backup_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"{stamp}{label}{SUFFIXES[kind]}"
    if kind == "sqlite":
        _sqlite_copy(source=_sqlite_name(alias), target=str(path))
        # The copy is a plain file on its own: no WAL beside it.
        with closing(sqlite3.connect(path)) as copy:
            copy.execute("PRAGMA journal_mode=DELETE")
    else:
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(path)], alias)
    path.chmod(0o600)  # it holds password hashes and sessions
    return path


def restore(path: Path, alias: str = "default") -> Path:
    """Replace the database's contents with the backup at `path`. The current contents are
    backed up first (…-before-restore), so a restore loses nothing either."""
    kind = vendor(alias)
    if not path.is_file():
        raise BackupError(f"There is no backup at {path}.")
    if path.suffix != SUFFIXES[kind]:
        raise BackupError(
            f"{path.name} is not a {kind} backup (its name should end in {SUFFIXES[kind]})."
        )
    if kind == "sqlite" and not _sqlite_intact(path):
        raise BackupError(f"{path.name} is damaged; the database was not touched.")
    safety = backup(alias, label="-before-restore")
    connections[alias].close()
    if kind == "sqlite":
        _sqlite_copy(source=str(path), target=_sqlite_name(alias))
    else:
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
                connections[alias].settings_dict["NAME"],  # the rest comes from PG* variables
                str(path),
            ],
            alias,
        )
    return safety


def latest(folder: Path | None = None) -> Path:
    """The newest backup that is not a safety copy made by a restore."""
    found = sorted(
        path
        for path in (folder or backup_dir()).glob("*")
        if path.suffix in SUFFIXES.values() and "-before-restore" not in path.name
    )
    if not found:
        raise BackupError(f"There are no backups in {folder or backup_dir()} yet.")
    return found[-1]


def canonical_dump(alias: str = "default") -> dict[str, list[dict]]:
    """Every row of every table the apps define (and the database has), ordered by primary
    key, as JSON-able values: two databases holding the same data give the same dump."""
    dump = {}
    with connections[alias].cursor() as cursor:
        tables = set(connections[alias].introspection.table_names(cursor))
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.proxy or model._meta.db_table not in tables:
            continue
        rows = model._base_manager.using(alias).order_by("pk").values()
        dump[model._meta.db_table] = [
            json.loads(json.dumps(row, cls=DjangoJSONEncoder, sort_keys=True)) for row in rows
        ]
    return dict(sorted(dump.items()))


def checksum(dump: dict[str, list[dict]]) -> str:
    encoded = json.dumps(dump, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _sqlite_name(alias: str) -> str:
    return str(connections[alias].settings_dict["NAME"])


def _sqlite_intact(path: Path) -> bool:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as check:
            return check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        return False


def _sqlite_copy(source: str, target: str) -> None:
    with (
        closing(sqlite3.connect(source, timeout=20)) as reader,
        closing(sqlite3.connect(target, timeout=20)) as writer,
    ):
        reader.backup(writer)


def _run(command: list[str], alias: str) -> None:
    """Run a PostgreSQL client with the connection's settings in libpq's variables, so the
    password never appears on a command line."""
    database = connections[alias].settings_dict
    variables = {
        "PGHOST": database.get("HOST") or "",
        "PGPORT": str(database.get("PORT") or ""),
        "PGUSER": database.get("USER") or "",
        "PGPASSWORD": database.get("PASSWORD") or "",
        "PGDATABASE": database["NAME"],
    }
    environment = os.environ | {name: value for name, value in variables.items() if value}
    result = subprocess.run(  # noqa: S603  # nosec B603 # a fixed program, no shell
        command, env=environment, capture_output=True, text=True, check=False, timeout=3600
    )
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip() or result.returncode}")
