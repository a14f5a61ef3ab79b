"""History rows keep every body whole: small ones in the row, large ones as files named by
their sha256, so a rerun sends exactly the bytes sent before."""

import hashlib

import pytest

from playground import blobs, conf
from playground.invoke import Request
from tests.playground.factories import invocation

pytestmark = pytest.mark.django_db


def test_a_large_body_is_kept_as_a_file_and_read_back_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(conf, "BLOB_DIR", tmp_path)
    body = bytes(range(256)) * 1000  # 256,000 bytes, over the inline limit
    row = invocation()

    row.set_request_body(body)
    row.save()
    row.refresh_from_db()

    assert row.request_blob == hashlib.sha256(body).hexdigest()
    assert bytes(row.request_inline) == b"" and row.request_size == len(body)
    assert Request.again(row).body == body
    assert (tmp_path / row.request_blob[:2] / row.request_blob).read_bytes() == body


def test_a_small_body_stays_in_the_row():
    row = invocation()

    row.set_response_body(b'{"ok": true}')

    assert (row.response_blob, row.response_body()) == ("", b'{"ok": true}')


def test_a_blob_name_that_is_not_a_digest_is_refused():
    with pytest.raises(ValueError):
        blobs.path_for("../../etc/passwd")
