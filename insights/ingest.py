"""Ingestion: read each capture-enabled endpoint's capture files from its environment's storage
into per-minute rollups and browsable records. Incremental and idempotent.

Each file's row remembers how many bytes were read. A read starts there, takes only complete
lines (a last line still being written waits for the next read; one that never completes is
counted as torn, reliability.md D5), and moves the offset with a conditional UPDATE in the same
transaction as the rows it inserts: a second reader of the same bytes updates nothing and
inserts nothing, so reading twice never counts twice. A per-endpoint lease keeps two beat runs
from listing the same prefix at once.

Fast (make bench's goal: 1,000,000 records at 50,000 a second or more): one orjson.loads a line and
the common record's fields read inline; a tally per distinct second folded into per-minute
rollups, upserted once a transaction of ~25,000 records; plain tuples inserted with executemany,
no model instance per record. On SQLite what a file's records share goes into the INSERT as
literals and many rows go in one statement, as binding values is most of the insert's cost.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import itemgetter

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from orjson import JSONDecodeError, loads

from endpoints.models import Endpoint
from environments.backends.base import Backend, ProviderError, StoredObject
from insights import conf
from insights.models import CapturedRecord, CaptureFile, CaptureSource, MinuteRollup

log = logging.getLogger(__name__)

# What a Parsed row holds, in order; RECORD_COLUMNS adds the file's own three in front.
ROW_COLUMNS = (
    "time",
    "target_model",
    "event_id",
    "inference_id",
    "custom_attributes",
    "input_content_type",
    "input_encoding",
    "input_decoded",
    "input_bytes",
    "input_data",
    "output_content_type",
    "output_encoding",
    "output_decoded",
    "output_bytes",
    "output_data",
    "has_output",
)
RECORD_COLUMNS = ("endpoint_id", "file_id", "variant", *ROW_COLUMNS)


def capture_prefix(endpoint: Endpoint) -> str | None:
    """Where the endpoint's capture files lie: `{DestinationS3Uri}/{EndpointName}/`, or None
    when the endpoint does not capture."""
    capture = endpoint.spec.get("capture") or {}
    if not capture.get("enabled") or not capture.get("destination"):
        return None
    return f"{capture['destination'].rstrip('/')}/{endpoint.name}/"


def capturing_endpoints() -> list[Endpoint]:
    """Endpoints whose capture files are worth a look: capture on, and not deleted long ago (a
    deleted endpoint's last files are still read once)."""
    recent = timezone.now() - timedelta(days=1)
    candidates = Endpoint.objects.filter(
        Q(deleted_at__isnull=True) | Q(deleted_at__gte=recent)
    ).select_related("environment")
    return [endpoint for endpoint in candidates if capture_prefix(endpoint)]


@dataclass
class Result:
    """What one ingestion run did, for logs, tests and the benchmark."""

    files: int = 0
    records: int = 0
    torn_lines: int = 0
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, other: Result) -> None:
        self.files += other.files
        self.records += other.records
        self.torn_lines += other.torn_lines
        self.skipped += other.skipped
        self.errors.update(other.errors)


def ingest_all() -> Result:
    """One beat run: every capturing endpoint, each under its own lease."""
    result = Result()
    for endpoint in capturing_endpoints():
        result.add(ingest_endpoint(endpoint))
    return result


def claim(endpoint: Endpoint) -> bool:
    """Take the endpoint's lease with a conditional UPDATE; False when another run holds it."""
    CaptureSource.objects.get_or_create(endpoint=endpoint)
    now = timezone.now()
    return bool(
        CaptureSource.objects.filter(endpoint=endpoint, lease_until__lte=now).update(
            lease_until=now + timedelta(seconds=conf.INGEST_LEASE_SECONDS)
        )
    )


def ingest_endpoint(endpoint: Endpoint, backend: Backend | None = None) -> Result:
    """Read what is new under the endpoint's capture prefix. Safe to run twice, or at once."""
    result = Result()
    prefix = capture_prefix(endpoint)
    if prefix is None:
        return result
    if not claim(endpoint):
        result.skipped.append(endpoint.name)
        return result
    error = ""
    try:
        reader = Reader(endpoint, backend or endpoint.environment.backend, prefix)
        result = reader.run()
    except ProviderError as failure:
        error = failure.message
        result.errors[endpoint.name] = error
        log.warning("capture ingestion of %s failed: %s", endpoint.name, error)
    finally:
        now = timezone.now()
        CaptureSource.objects.filter(endpoint=endpoint).update(
            lease_until=now, last_run_at=now, last_error=error
        )
    return result


class Reader:
    """Reads one endpoint's new capture bytes and writes them in chunks of files."""

    def __init__(self, endpoint: Endpoint, backend: Backend, prefix: str) -> None:
        self.endpoint = endpoint
        self.backend = backend
        self.prefix = prefix
        self.times: dict[str, tuple[object, datetime] | None] = {}
        self.adapt_time = connection.ops.adapt_datetimefield_value
        # Where the database stores a whole-second UTC time as its text with a space for the T
        # (Django on SQLite: checked here, on a probe), SageMaker's own times need no adapter.
        probe = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
        self.plain_times = self.adapt_time(probe) == "2001-02-03 04:05:06"
        self.minutes: dict[str, datetime] = {}
        self.pending: list[Parsed] = []
        self.pending_rows = 0
        self.result = Result()

    def run(self) -> Result:
        listed = [
            found
            for found in self.backend.list_objects(self.prefix)
            if found.uri.endswith(".jsonl")
        ]
        known = {
            row.uri: row
            for row in CaptureFile.objects.filter(endpoint=self.endpoint).only(
                "pk", "uri", "size", "bytes_read", "pending_bytes"
            )
        }
        todo = [found for found in listed if self.has_news(known.get(found.uri), found)]
        todo.sort(key=lambda found: found.uri)  # the key holds the time: oldest first
        todo = todo[: conf.INGEST_MAX_FILES]
        missing = [found for found in todo if found.uri not in known]
        if missing:
            CaptureFile.objects.bulk_create(
                [
                    CaptureFile(
                        environment_id=self.endpoint.environment_id,
                        endpoint=self.endpoint,
                        uri=found.uri,
                    )
                    for found in missing
                ],
                ignore_conflicts=True,  # another reader made it first: same row either way
                batch_size=500,
            )
            known.update(
                (row.uri, row)
                for row in CaptureFile.objects.filter(
                    endpoint=self.endpoint, uri__in=[found.uri for found in missing]
                )
            )
        with collector_paused():
            for found in todo:
                data = self.backend.read_object(found.uri)
                self.pending.append(self.parse(known[found.uri], found, data))
                self.pending_rows += len(self.pending[-1].rows)
                if self.pending_rows >= conf.INGEST_BATCH:
                    self.write()
            self.write()
        return self.result

    @staticmethod
    def has_news(row: CaptureFile | None, found: StoredObject) -> bool:
        if row is None:
            return True
        if found.size < row.bytes_read:
            # Rewritten shorter: capture files are written once, so this is not one of ours to
            # re-count. Leave it; its row says how much was read.
            return False
        return found.size > row.bytes_read + row.pending_bytes

    def variant_of(self, uri: str) -> str:
        """`{prefix}{VariantName}/yyyy/mm/dd/HH/file.jsonl` -> VariantName."""
        return uri[len(self.prefix) :].split("/", 1)[0]

    def moment(self, text: object) -> tuple[object, datetime] | None:
        """An inferenceTime as the database stores it and the minute it falls in; cached,
        because a file's records share a handful of seconds."""
        if not isinstance(text, str):
            return None
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            self.times[text] = None
            return None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        if self.plain_times and SAGEMAKER_TIME.fullmatch(text):
            stored = f"{text[:10]} {text[11:19]}"
            minute = self.minutes.get(text[:16])
            if minute is None:
                minute = self.minutes[text[:16]] = when.replace(second=0, microsecond=0)
        else:
            stored, minute = self.adapt_time(when), when.replace(second=0, microsecond=0)
        self.times[text] = value = (stored, minute)
        return value

    def parse(self, row: CaptureFile, found: StoredObject, data: bytes) -> Parsed:
        """A file's new complete lines as rows and rollups."""
        with collector_paused():
            return self.parse_lines(row, found, data)

    def parse_lines(self, row: CaptureFile, found: StoredObject, data: bytes) -> Parsed:
        start = row.bytes_read
        chunk = data[start:]
        complete = chunk.rfind(b"\n") + 1
        body, tail = chunk[:complete], chunk[complete:]
        consumed, pending = len(chunk), 0
        if tail.strip():
            if isinstance(load_line(tail), dict):
                body += b"\n" + tail  # a last line without its newline, but whole
            else:
                consumed, pending = complete, len(tail)  # still being written, or torn
        if b"\\u0000" in body:
            body = without_nul(body)
        variant = self.variant_of(found.uri)
        parsed = Parsed(
            row=row,
            start=start,
            end=start + consumed,
            pending=pending,
            size=found,
            variant=variant,
        )
        rows, times, moment = parsed.rows, self.times, self.moment
        tallies: dict[tuple, list] = {}  # -> [count, request bytes, response bytes]
        # SQLite stores booleans as 1 and 0: plain ints bind faster than bools.
        yes, no = (1, 0) if connection.vendor == "sqlite" else (True, False)
        torn = 0
        # The hot loop of ingestion: one orjson.loads a line (straight from the bytes: a line
        # that is not UTF-8 is not JSON and only that line is lost), then the fields of the
        # common record (CSV or JSON text in and out) read inline, without a call per field.
        # Text is cut to its column's length later, a column at a time (columns_of).
        for line in body.split(b"\n"):
            try:
                record = loads(line)
            except JSONDecodeError:
                if line.strip():
                    torn += 1  # not JSON; blank lines are no record and no damage
                continue
            try:
                capture = record["captureData"]
                metadata = record["eventMetadata"]
                text = metadata["inferenceTime"]
            except (KeyError, TypeError):
                torn += 1  # JSON, but not a capture record
                continue
            when = times.get(text, UNSEEN) if type(text) is str else None
            if when is UNSEEN:
                when = moment(text)
            if when is None or type(capture) is not dict:
                torn += 1
                continue
            stored_time = when[0]
            target = metadata.get("targetModel") or ""
            if type(target) is not str:
                target = text_of(target, 1024)
            event_id = metadata.get("eventId", "")
            if type(event_id) is not str:
                event_id = text_of(event_id, 64)
            inference_id = metadata.get("inferenceId", "")
            if type(inference_id) is not str:
                inference_id = text_of(inference_id, 64)
            custom = metadata.get("customAttributes", "")
            if type(custom) is not str:
                custom = text_of(custom, 1024)

            in_half = capture.get("endpointInput")
            try:
                in_data = in_half["data"]
                in_encoding = in_half["encoding"]
                in_type = in_half["observedContentType"]
                plain = (
                    type(in_data) is str
                    and type(in_type) is str
                    and type(in_encoding) is str
                    and in_encoding != "BASE64"
                )
            except (KeyError, TypeError):
                plain = False
            if plain:  # CSV or JSON text: nothing to decode
                in_bytes = len(in_data) if in_data.isascii() else len(in_data.encode())
                in_decoded = yes
            else:
                in_type, in_encoding, in_decoded, in_bytes, in_data = half(in_half, yes, no)

            out_half = capture.get("endpointOutput")
            try:
                out_data = out_half["data"]
                out_encoding = out_half["encoding"]
                out_type = out_half["observedContentType"]
                plain = (
                    type(out_data) is str
                    and type(out_type) is str
                    and type(out_encoding) is str
                    and out_encoding != "BASE64"
                )
            except (KeyError, TypeError):
                plain = False
            if plain:
                out_bytes = len(out_data) if out_data.isascii() else len(out_data.encode())
                out_decoded = yes
            else:
                out_type, out_encoding, out_decoded, out_bytes, out_data = half(out_half, yes, no)

            rows.append(
                (
                    stored_time,
                    target,
                    event_id,
                    inference_id,
                    custom,
                    in_type,
                    in_encoding,
                    in_decoded,
                    in_bytes,
                    in_data,
                    out_type,
                    out_encoding,
                    out_decoded,
                    out_bytes,
                    out_data,
                    no if out_half is None else yes,
                )
            )
            # One tally per distinct (target, second, types, answered): a file holds a handful,
            # folded into its minutes' rollups below.
            key = (target, text, in_type, out_type, out_half is None)
            tally = tallies.get(key)
            if tally is None:
                tallies[key] = [1, in_bytes, out_bytes]
            else:
                tally[0] += 1
                tally[1] += in_bytes
                tally[2] += out_bytes
        parsed.torn = torn
        rollups = parsed.rollups
        for (target, text, in_type, out_type, unanswered), (
            count,
            in_bytes,
            out_bytes,
        ) in tallies.items():
            key = (variant, target[:1024], times[text][1])
            rollup = rollups.get(key)
            if rollup is None:
                rollup = rollups[key] = [0, 0, 0, 0, {}, {}]
            rollup[0] += count
            if unanswered:
                rollup[1] += count
            rollup[2] += in_bytes
            rollup[3] += out_bytes
            if in_type:
                in_type = in_type[:256]
                rollup[4][in_type] = rollup[4].get(in_type, 0) + count
            if out_type:
                out_type = out_type[:256]
                rollup[5][out_type] = rollup[5].get(out_type, 0) + count
        return parsed

    def write(self) -> None:
        """Write the pending files in one transaction: each file's offset moves only if nobody
        moved it first, and only those files' rows and rollups are written."""
        if not self.pending:
            return
        batch, self.pending, self.pending_rows = self.pending, [], 0
        now = timezone.now()
        # CaptureFile.objects.filter(pk=..., bytes_read=start).update(bytes_read=end, ...,
        # lines_read=F("lines_read") + n, ...) in plain SQL: the ORM takes longer to build it
        # than the database to run it, once for every file.
        table = connection.ops.quote_name(CaptureFile._meta.db_table)
        names = [
            connection.ops.quote_name(CaptureFile._meta.get_field(name).column)
            for name in MOVE_COLUMNS
        ]
        changes = ", ".join(f"{name} = %s" for name in names[2:])
        key = connection.ops.quote_name(CaptureFile._meta.pk.column)
        sql = (
            f"UPDATE {table} SET {changes}, "  # noqa: S608 (names are ours)
            f"{names[0]} = {names[0]} + %s, {names[1]} = {names[1]} + %s "
            f"WHERE {key} = %s AND {names[2]} = %s"
        )
        adapt_time = connection.ops.adapt_datetimefield_value
        read_at = adapt_time(now)
        with transaction.atomic(), connection.cursor() as cursor:
            written: list[Parsed] = []
            rollups: dict[tuple, list] = {}
            for parsed in batch:
                found = parsed.size
                changes = [parsed.end, parsed.pending, found.size, adapt_time(found.modified)]
                added = [len(parsed.rows), parsed.torn]
                cursor.execute(sql, [*changes, read_at, *added, parsed.row.pk, parsed.start])
                if cursor.rowcount != 1:
                    continue  # another reader took these bytes first
                written.append(parsed)
                merge(rollups, parsed.rollups)
                self.result.files += 1
                self.result.records += len(parsed.rows)
                self.result.torn_lines += parsed.torn
            insert_records(self.endpoint.pk, written)
            upsert_rollups(self.endpoint, rollups)


# The columns write() sets: two added to, then the rest as they are.
MOVE_COLUMNS = (
    "lines_read",
    "torn_lines",
    "bytes_read",
    "pending_bytes",
    "size",
    "modified",
    "read_at",
)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while. Ingestion allocates a handful of dicts and
    tuples a line and makes no reference cycles, so the collector would only walk them over and
    over (bench: ~10% of ingestion's time); what Django's code leaves meanwhile is collected
    once it is back on."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@dataclass
class Parsed:
    """One file's new complete lines, parsed, waiting to be written."""

    row: CaptureFile
    start: int
    end: int
    pending: int
    size: StoredObject
    variant: str = ""
    torn: int = 0
    # ROW_COLUMNS of each record; the endpoint, the file and the variant are the file's own
    rows: list[tuple] = field(default_factory=list)
    # (variant, target, minute) -> [count, without output, request bytes, response bytes,
    #                                input types, output types]
    rollups: dict[tuple, list] = field(default_factory=dict)


UNSEEN = object()
# How SageMaker writes inferenceTime: whole seconds, UTC.
SAGEMAKER_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
ROWS_PER_INSERT = 50
# A JSON \u0000 escape: a backslash that is not itself escaped (an even run of backslashes
# before it), then u0000.
NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def without_nul(body: bytes) -> bytes:
    """The lines with each \u0000 in their strings made U+FFFD: PostgreSQL's text and jsonb hold
    no NUL, and a record is stored alike on both databases (its byte counts then count the
    replacement character's three bytes)."""
    return NUL_ESCAPE.sub(rb"\1\\ufffd", body)


def load_line(line: str | bytes) -> object:
    """One line's JSON value, or None when it is not JSON (orjson: strict RFC 8259, so NaN,
    lone surrogates and bytes that are not UTF-8 are not JSON either)."""
    try:
        return loads(line)
    except JSONDecodeError:
        return None


def text_of(value: object, limit: int) -> str:
    if value is None:
        return ""
    return (value if type(value) is str else str(value))[:limit]


def half(captured: object, yes: object = True, no: object = False) -> tuple:
    """(content type, encoding, decoded, size in bytes, text) of endpointInput/endpointOutput,
    decoded being `yes` or `no` (the database's own booleans). BASE64 data is decoded when its
    bytes are UTF-8 text, so a search finds words inside it. Parse reads the common CSV and JSON
    text halves inline; this is for the rest."""
    if captured is None:
        return "", "", yes, 0, ""
    try:
        data = captured["data"]
        encoding = captured["encoding"]
        content_type = captured["observedContentType"]
    except (KeyError, TypeError):
        if not isinstance(captured, dict):
            return "", "", yes, 0, ""
        data = captured.get("data") or ""
        encoding = captured.get("encoding") or ""
        content_type = captured.get("observedContentType") or ""
    if encoding != "BASE64" and type(data) is str and type(content_type) is str:
        # The common case, CSV or JSON text: nothing to decode.
        size = len(data) if data.isascii() else len(data.encode("utf-8"))
        return content_type[:256], encoding[:10], yes, size, data
    content_type = str(content_type)[:256]
    encoding = str(encoding)[:10]
    if not isinstance(data, str):
        data = json.dumps(data)
    if encoding != "BASE64":
        return content_type, encoding, yes, len(data.encode("utf-8")), data
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return content_type, encoding, no, len(data), data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return content_type, encoding, no, len(raw), data
    if "\x00" in text:  # binary after all, and PostgreSQL's text holds no NUL
        return content_type, encoding, no, len(raw), data
    return content_type, encoding, yes, len(raw), text


def merge(into: dict[tuple, list], more: dict[tuple, list]) -> None:
    for key, values in more.items():
        existing = into.get(key)
        if existing is None:
            into[key] = [*values[:4], dict(values[4]), dict(values[5])]
            continue
        for index in range(4):
            existing[index] += values[index]
        for index in (4, 5):
            for name, count in values[index].items():
                existing[index][name] = existing[index].get(name, 0) + count


def insert_records(endpoint_id: int, files: list[Parsed]) -> None:
    """Each file's rows with executemany: far faster than a model instance per record."""
    table = connection.ops.quote_name(CapturedRecord._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in RECORD_COLUMNS)
    insert = f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 (names are ours)
    with connection.cursor() as cursor:
        for parsed in files:
            if not parsed.rows:
                continue
            if connection.vendor != "sqlite" or "\x00" in parsed.variant:
                values = ", ".join(["%s"] * len(RECORD_COLUMNS))
                constants = (repeat(endpoint_id), repeat(parsed.row.pk), repeat(parsed.variant))
                rows = list(zip(*constants, *columns_of(parsed.rows), strict=False))
                cursor.executemany(f"{insert}({values})", rows)
                continue
            # SQLite: ROWS_PER_INSERT rows a statement, as running a statement once costs about
            # as much as binding five values.
            values, bound = sqlite_values(cursor, endpoint_id, parsed)
            flat = list(chain.from_iterable(map(bound, parsed.rows)))
            width = len(flat) // len(parsed.rows)
            many = ROWS_PER_INSERT
            whole = len(parsed.rows) - len(parsed.rows) % many
            if whole:
                cursor.executemany(
                    insert + ", ".join([f"({values})"] * many),
                    [flat[at : at + many * width] for at in range(0, whole * width, many * width)],
                )
            if whole < len(parsed.rows):
                rest = len(parsed.rows) - whole
                cursor.execute(insert + ", ".join([f"({values})"] * rest), flat[whole * width :])


# Text columns' lengths (ROW_COLUMNS indexes): longer text is cut, as SageMaker's own limits
# (1,024 for a target model or custom attributes, 64 for ids) already do.
LIMITS = {
    ROW_COLUMNS.index(name): CapturedRecord._meta.get_field(name).max_length
    for name in (
        "target_model",
        "event_id",
        "inference_id",
        "custom_attributes",
        "input_content_type",
        "input_encoding",
        "output_content_type",
        "output_encoding",
    )
}


# Columns that often hold one value in all of a file's records (sqlite_values).
SHARED = tuple(
    ROW_COLUMNS.index(name)
    for name in (
        "target_model",
        "custom_attributes",
        "input_content_type",
        "input_encoding",
        "input_decoded",
        "input_bytes",
        "output_content_type",
        "output_encoding",
        "output_decoded",
        "output_bytes",
        "has_output",
    )
)


def columns_of(rows: list[tuple]) -> list[tuple]:
    """The rows' columns for PostgreSQL, their text cut to the columns' lengths: a column is cut
    only when one of its values is too long, which real captures almost never have."""
    columns = list(zip(*rows, strict=True))
    for index, limit in LIMITS.items():
        values = columns[index]
        if max(map(len, values)) > limit:
            columns[index] = tuple(value[:limit] for value in values)
    return columns


def sqlite_values(
    cursor: object, endpoint_id: int, parsed: Parsed
) -> tuple[str, Callable[[tuple], tuple]]:
    """The VALUES list of a file's INSERT on SQLite, and what of each row to bind to it.

    Binding is most of executemany's cost on SQLite, so what the file's records share is written
    once into the statement as a literal: the endpoint, the file and its variant always, and of
    the columns that often repeat (SHARED: the target model, content types, encodings, sizes...)
    those with one value in every record. Literals are SQLite's own quote() of the value, so no
    value is ever SQL; text with a NUL (which quote() would cut short) stays a parameter."""
    rows = parsed.rows
    shared = itemgetter(*SHARED)
    firsts = shared(rows[0])
    keys = list(map(shared, rows))
    if keys.count(firsts) == len(keys):  # the usual file: one value each
        candidates = dict(zip(SHARED, firsts, strict=True))
    else:
        candidates = {
            index: values[0]
            for index, values in zip(SHARED, zip(*keys, strict=True), strict=True)
            if values.count(values[0]) == len(values)
        }
    literal: dict[int, object] = {}
    for index, value in candidates.items():
        if type(value) is int:
            literal[index] = value
        elif type(value) is str and "\x00" not in value:
            literal[index] = value[: LIMITS[index]] if index in LIMITS else value
    bound = [index for index in range(len(ROW_COLUMNS)) if index not in literal]
    # Bound text longer than its column (which real captures almost never have) is cut by
    # SQLite's substr(), in characters as Python's slices.
    cut = {
        index
        for index in bound
        if index in LIMITS and max(map(len, map(itemgetter(index), rows))) > LIMITS[index]
    }
    texts = [parsed.variant, *(value for value in literal.values() if type(value) is str)]
    cursor.execute(f"SELECT {', '.join(['quote(%s)'] * len(texts))}", texts)
    quoted = iter(cursor.fetchone())
    # Django turns %s into SQLite's ? and %% into %: a literal's own % is doubled.
    values = [str(int(endpoint_id)), str(int(parsed.row.pk)), next(quoted).replace("%", "%%")]
    for index in range(len(ROW_COLUMNS)):
        if index not in literal:
            values.append(f"substr(%s, 1, {LIMITS[index]})" if index in cut else "%s")
        elif type(literal[index]) is int:
            values.append(str(literal[index]))
        else:
            values.append(next(quoted).replace("%", "%%"))
    return ", ".join(values), itemgetter(*bound)  # never fewer than two: a tuple each row


def upsert_rollups(endpoint: Endpoint, rollups: dict[tuple, list]) -> None:
    """Add the chunk's minutes to the rollups already stored: the existing rows of those minutes
    are read once, merged in memory and written back; new minutes are inserted."""
    if not rollups:
        return
    minutes = {minute for _, _, minute in rollups}
    existing = {
        (row.variant, row.target_model, row.minute): row
        for row in MinuteRollup.objects.filter(endpoint=endpoint, minute__in=minutes)
    }
    changed, created = [], []
    for (variant, target, minute), values in rollups.items():
        count, without_output, request_bytes, response_bytes, in_types, out_types = values
        row = existing.get((variant, target, minute))
        if row is None:
            created.append(
                MinuteRollup(
                    endpoint=endpoint,
                    variant=variant,
                    target_model=target,
                    minute=minute,
                    count=count,
                    without_output=without_output,
                    request_bytes=request_bytes,
                    response_bytes=response_bytes,
                    content_types={"in": in_types, "out": out_types},
                )
            )
            continue
        row.count += count
        row.without_output += without_output
        row.request_bytes += request_bytes
        row.response_bytes += response_bytes
        types = row.content_types or {}
        for direction, more in (("in", in_types), ("out", out_types)):
            counts = types.setdefault(direction, {})
            for name, number in more.items():
                counts[name] = counts.get(name, 0) + number
        row.content_types = types
        changed.append(row)
    MinuteRollup.objects.bulk_create(created, batch_size=500)
    MinuteRollup.objects.bulk_update(
        changed,
        ["count", "without_output", "request_bytes", "response_bytes", "content_types"],
        batch_size=500,
    )
