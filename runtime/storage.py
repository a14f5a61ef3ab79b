"""Local object storage: s3://bucket/key URIs mapped onto a folder, and safe extraction of
model.tar.gz artifacts.

The local runtime keeps what SageMaker would keep in S3 under one folder (settings.LOCAL_S3_ROOT),
one sub-folder per bucket. Every URI is vetted before it becomes a path, so a key can never reach
outside its bucket, and model archives are vetted member by member before anything is unpacked.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

URI_EXAMPLE = "Use an s3://bucket/key URI, such as s3://my-bucket/models/model.tar.gz."
BUCKET_RULES = (
    "Use 3 to 63 lowercase letters, digits, dots or hyphens, starting and ending with a letter "
    "or digit."
)
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
# put() writes here first; list() skips these, and keys may not use the prefix, so a half-written
# object is never mistaken for a real one.
TEMP_PREFIX = ".storage-tmp-"
COPY_CHUNK = 1024 * 1024

GZIP_MAGIC = b"\x1f\x8b"
USTAR_MAGIC = b"ustar"  # at offset 257 of a POSIX or GNU tar header
NOT_AN_ARCHIVE = (
    "This is not a .tar.gz archive. Pack the model folder with: tar -czf model.tar.gz -C model ."
)
ONLY_FILES = "model archives may hold only files and folders."


class StorageError(ValueError):
    """A URI, object or archive the storage refuses; the message tells the user what to fix."""


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object, as list() reports it."""

    uri: str
    key: str
    size: int
    modified: datetime  # UTC


def _parse_uri(uri: str) -> tuple[str, str]:
    """Split s3://bucket/key into bucket and key, refusing anything that is not a safe S3 URI.

    The key may be empty or end with "/" here: list() takes such prefixes. Objects need more,
    which LocalStorage.path_for checks.
    """
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme != "s3":
        raise StorageError(f"{uri!r} is not an S3 URI. {URI_EXAMPLE}")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri} names no bucket. {URI_EXAMPLE}")
    if not BUCKET_NAME.fullmatch(bucket) or ".." in bucket or IP_ADDRESS.fullmatch(bucket):
        raise StorageError(f"{bucket!r} is not a valid bucket name. {BUCKET_RULES}")
    if "\x00" in key or "\\" in key:
        raise StorageError(
            f"The key in {uri!r} holds a NUL or backslash. Use letters, digits and / between "
            "folder names."
        )
    if key.startswith("/"):
        raise StorageError(
            f"The key in {uri} starts with /. Write a single / after the bucket, such as "
            "s3://my-bucket/models/model.tar.gz."
        )
    segments = key.split("/")
    if ".." in segments:
        raise StorageError(f"The key in {uri} uses '..'. Name the object by its full key instead.")
    if any(segment.startswith(TEMP_PREFIX) for segment in segments):
        raise StorageError(
            f"The key in {uri} uses {TEMP_PREFIX}, which the storage keeps for its own temporary "
            "files. Choose another name."
        )
    return bucket, key


def _is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether path, with every symlink resolved, is folder or lies under it."""
    real_path = os.path.realpath(path)
    real_folder = os.path.realpath(folder)
    return real_path == real_folder or real_path.startswith(real_folder.rstrip(os.sep) + os.sep)


class LocalStorage:
    """S3-style objects kept as plain files under root/bucket/key."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, uri: str) -> Path:
        """The file that holds the object at uri. Refuses URIs that would reach outside the
        bucket's folder, through '..' or through a symlink."""
        bucket, key = _parse_uri(uri)
        if not key or key.endswith("/"):
            raise StorageError(f"{uri} names a folder, not an object. {URI_EXAMPLE}")
        # Empty and "." segments would map two different keys onto one file.
        if any(segment in ("", ".") for segment in key.split("/")):
            raise StorageError(
                f"The key in {uri} has an empty or '.' folder name. Use one / between folder names."
            )
        bucket_folder = self.root / bucket
        path = bucket_folder / key
        if not _is_inside(bucket_folder, self.root) or not _is_inside(path, bucket_folder):
            raise StorageError(
                f"{uri} leads outside the storage folder through a symbolic link. Remove the link "
                f"under {bucket_folder} or choose another key."
            )
        return path

    def put(self, uri: str, data: bytes) -> None:
        """Store data at uri, replacing any object there; readers see the old or the new object,
        never a half-written one."""
        self._write_atomically(uri, lambda file: file.write(data))

    def put_file(self, uri: str, source: Path) -> None:
        """Store a copy of the file at source at uri, as put() does."""
        if not Path(source).is_file():
            raise StorageError(f"No file at {source}. Check the path and try again.")
        with open(source, "rb") as readable:
            self._write_atomically(uri, lambda file: shutil.copyfileobj(readable, file, COPY_CHUNK))

    def get(self, uri: str) -> bytes:
        """The bytes of the object at uri."""
        path = self.path_for(uri)
        if not path.is_file():
            raise StorageError(f"No object at {uri}. Check the bucket and key, or upload it first.")
        return path.read_bytes()

    def exists(self, uri: str) -> bool:
        """Whether an object is stored at uri."""
        return self.path_for(uri).is_file()

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        """Objects whose key starts with the prefix, sorted by key, at any depth.

        As in S3, the prefix is plain text: s3://b/models/mo finds models/model.tar.gz and
        models/mobile/weights.bin alike.
        """
        bucket, prefix = _parse_uri(prefix_uri)
        bucket_folder = self.root / bucket
        # Walk only the folder the prefix's last "/" points into; nothing above it can match.
        start = bucket_folder / prefix.rpartition("/")[0]
        if not _is_inside(bucket_folder, self.root) or not _is_inside(start, bucket_folder):
            raise StorageError(
                f"{prefix_uri} leads outside the storage folder through a symbolic link. Remove "
                f"the link under {bucket_folder}."
            )
        found = []
        for folder, _, file_names in os.walk(start):  # does not follow folder symlinks
            for name in file_names:
                if name.startswith(TEMP_PREFIX):
                    continue
                path = Path(folder) / name
                key = path.relative_to(bucket_folder).as_posix()
                if not key.startswith(prefix) or not _is_inside(path, bucket_folder):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # deleted while we walked
                found.append(
                    ObjectInfo(
                        uri=f"s3://{bucket}/{key}",
                        key=key,
                        size=stat.st_size,
                        modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                    )
                )
        return sorted(found, key=lambda info: info.key)

    def delete(self, uri: str) -> None:
        """Remove the object at uri; deleting what is not there is no error, as in S3."""
        path = self.path_for(uri)
        # Empty parent folders stay: removing them would race a put() that just created them.
        if not path.is_dir():
            path.unlink(missing_ok=True)

    def _write_atomically(self, uri: str, write: Callable[[BinaryIO], object]) -> None:
        """Write through a temp file in the object's folder, then rename it over the object:
        a rename within one folder is atomic, so a crash leaves the old object or the new one."""
        path = self.path_for(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        except (FileExistsError, NotADirectoryError) as error:
            raise StorageError(
                f"Cannot store {uri}: part of its key is already an object here, and locally a "
                "key cannot be both an object and a folder. Choose another key."
            ) from error
        try:
            with os.fdopen(handle, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_name, path)
        except IsADirectoryError as error:
            os.unlink(temp_name)
            raise StorageError(
                f"Cannot store {uri}: other objects use its key as a folder. Choose another key."
            ) from error
        except BaseException:
            os.unlink(temp_name)
            raise


def safe_extract(
    archive: Path,
    destination: Path,
    *,
    max_bytes: int = 4 * 1024**3,
    max_members: int = 10_000,
) -> list[str]:
    """Unpack a model.tar.gz into destination and return its member names.

    Every member is vetted before anything is written, and the archive is unpacked into a temp
    folder that is renamed into place, so a refused archive leaves nothing behind. destination must
    not exist yet, or be an empty folder.
    """
    archive = Path(archive)
    destination = Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise StorageError(
            f"{destination} already exists and is not empty. Extract into a new or empty folder."
        )
    mode = _archive_mode(archive)
    try:
        with tarfile.open(archive, mode) as tar:
            members = _vet_members(tar, max_bytes=max_bytes, max_members=max_members)
            destination.parent.mkdir(parents=True, exist_ok=True)
            temp_folder = Path(tempfile.mkdtemp(prefix=".extract-", dir=destination.parent))
            try:
                temp_folder.chmod(0o755)  # mkdtemp makes it private; the model server reads it
                # The data filter is a second guard: it strips permission bits like setuid and
                # refuses anything that would still land outside the folder.
                tar.extractall(temp_folder, members=members, filter="data")
                os.replace(temp_folder, destination)
            except BaseException:
                shutil.rmtree(temp_folder, ignore_errors=True)
                raise
    except tarfile.FilterError as error:
        raise StorageError(f"The archive was refused while unpacking: {error}.") from error
    # Only the archive's own faults; a full disk or a locked folder is not the archive's fault
    # and surfaces as the OSError it is.
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise StorageError(
            f"The archive is damaged or incomplete ({error}). Pack it again and upload it anew."
        ) from error
    return [member.name for member in members]


def _archive_mode(archive: Path) -> str:
    """The tarfile mode for a gzipped or plain tar; anything else is refused."""
    try:
        with open(archive, "rb") as file:
            head = file.read(512)
    except FileNotFoundError as error:
        raise StorageError(f"No archive at {archive}. Upload the model.tar.gz first.") from error
    if head.startswith(GZIP_MAGIC):
        return "r:gz"
    if head[257:262] == USTAR_MAGIC:
        return "r:"
    raise StorageError(NOT_AN_ARCHIVE)


def _vet_members(
    tar: tarfile.TarFile, *, max_bytes: int, max_members: int
) -> list[tarfile.TarInfo]:
    """Read the archive's headers one by one and refuse it at the first member that breaks a rule.

    Iterating the TarFile reads headers lazily, so a huge or endless archive is refused as soon
    as it passes a limit rather than after it has all been read. Names are checked here because
    the data filter of Python 3.11's tarfile quietly turns /etc/x into etc/x instead of refusing.
    """
    members = []
    total_bytes = 0
    for member in tar:
        members.append(member)
        if len(members) > max_members:
            raise StorageError(
                f"The archive holds more than {max_members:,} members. Pack the model into "
                "fewer files."
            )
        _refuse_member_type(member)
        name = member.name
        if name.startswith("/"):
            raise StorageError(
                f"The archive holds a member with an absolute path, {name}. Pack the model with "
                "relative paths: tar -czf model.tar.gz -C model ."
            )
        if ".." in name.split("/"):
            raise StorageError(
                f"The archive holds a member that climbs out of its folder, {name}. Model "
                "archives may not use '..' in paths."
            )
        total_bytes += member.size
        if total_bytes > max_bytes:
            raise StorageError(
                f"The archive unpacks to more than {max_bytes:,} bytes. Make the model smaller "
                "or raise the limit."
            )
    return members


def _refuse_member_type(member: tarfile.TarInfo) -> None:
    """Refuse any member that is not a regular file or a folder, naming it."""
    name = member.name
    if member.issym():
        raise StorageError(
            f"The archive holds a symbolic link, {name} -> {member.linkname}; {ONLY_FILES}"
        )
    if member.islnk():
        raise StorageError(
            f"The archive holds a hard link, {name} -> {member.linkname}; {ONLY_FILES}"
        )
    if member.ischr() or member.isblk():
        raise StorageError(f"The archive holds a device file, {name}; {ONLY_FILES}")
    if member.isfifo():
        raise StorageError(f"The archive holds a named pipe (FIFO), {name}; {ONLY_FILES}")
    if not (member.isfile() or member.isdir()):
        raise StorageError(
            f"The archive holds {name}, which is neither a file nor a folder; {ONLY_FILES}"
        )
