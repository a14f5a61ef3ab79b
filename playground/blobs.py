"""Large request and response bodies, kept as files named by their sha256 so equal bodies are
stored once and a half-written file is never read (written aside, then renamed)."""

import hashlib
import os
import re
import tempfile
from pathlib import Path

from playground import conf

SHA256 = re.compile(r"[0-9a-f]{64}")


def path_for(digest: str) -> Path:
    if not SHA256.fullmatch(digest):  # the name comes from our own rows, but never trust a path
        raise ValueError(f"Not a sha256 digest: {digest!r}")
    return Path(conf.BLOB_DIR) / digest[:2] / digest


def put(data: bytes) -> str:
    """Store `data`; returns its sha256."""
    digest = hashlib.sha256(data).hexdigest()
    path = path_for(digest)
    if path.exists():
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return digest


def get(digest: str) -> bytes:
    return path_for(digest).read_bytes()
