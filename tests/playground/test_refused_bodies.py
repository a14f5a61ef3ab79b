"""A request the portal refuses before sending it is history too, but its body is never written
to the body store: the row keeps the refusal and the body's size. (A body small enough to live
in the row stays there, so the request can be run again once what was wrong is fixed.)"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from endpoints.models import Endpoint
from playground import conf
from playground.models import Invocation
from tests.playground.factories import endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def blob_dir(tmp_path, monkeypatch):
    folder = tmp_path / "blobs"
    monkeypatch.setattr(conf, "BLOB_DIR", folder)
    return folder


def stored_blobs(folder) -> list:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def invoke(client, target: Endpoint, **fields):
    data = {"endpoint": target.pk, "content_type": "application/json"} | fields
    return client.post(reverse("playground:invoke"), data, HTTP_HX_REQUEST="true")


def only_invocation() -> Invocation:
    (row,) = Invocation.objects.all()
    return row


def test_a_serverless_body_over_4_mb_is_refused_and_only_its_size_is_kept(client_for, blob_dir):
    target = endpoint(kind=Endpoint.Kind.SERVERLESS)
    upload = SimpleUploadedFile("big.json", b"1" * 4_000_001)

    response = invoke(client_for("engineer"), target, upload=upload)

    row = only_invocation()
    assert "serverless endpoints take at most 4 MB" in response.content.decode()
    assert "serverless endpoints take at most 4 MB" in row.error_message
    assert row.state == Invocation.State.FAILED
    assert (row.request_blob, bytes(row.request_inline)) == ("", b"")
    assert row.request_size == 4_000_001
    assert stored_blobs(blob_dir) == []


def test_a_body_over_6_mb_is_refused_and_its_real_size_is_kept(client_for, blob_dir):
    upload = SimpleUploadedFile("big.bin", b"x" * 6_291_457)

    invoke(client_for("engineer"), endpoint(), upload=upload)

    row = only_invocation()
    assert row.status_code == 413
    assert "6,291,457 bytes" in row.error_message
    assert (row.request_blob, bytes(row.request_inline)) == ("", b"")
    assert row.request_size == 6_291_457
    assert stored_blobs(blob_dir) == []


def test_a_large_body_refused_for_another_reason_is_not_stored(client_for, blob_dir):
    target = endpoint(status=Endpoint.Status.CREATING)
    body = "[" + "1," * 50_000 + "1]"  # 100,003 bytes: over the 64 KB kept in the row

    invoke(client_for("engineer"), target, body=body)

    row = only_invocation()
    assert "is Creating, not In service" in row.error_message
    assert (row.request_blob, row.request_size) == ("", len(body))
    assert stored_blobs(blob_dir) == []


def test_refused_requests_in_compare_store_no_body(client_for, blob_dir):
    target = endpoint(status=Endpoint.Status.CREATING)
    body = "[" + "1," * 50_000 + "1]"

    client_for("engineer").post(
        reverse("playground:compare"),
        {
            "left_endpoint": target.pk,
            "right_endpoint": target.pk,
            "content_type": "application/json",
            "body": body,
        },
    )

    rows = list(Invocation.objects.all())
    assert len(rows) == 2
    assert all(row.request_blob == "" and row.request_size == len(body) for row in rows)
    assert len({row.compare_group for row in rows}) == 1
    assert stored_blobs(blob_dir) == []


def test_a_small_refused_body_stays_in_the_row_to_run_again(client_for, blob_dir):
    target = endpoint(status=Endpoint.Status.CREATING)

    invoke(client_for("engineer"), target, body='{"x": 1}')

    row = only_invocation()
    assert row.request_body() == b'{"x": 1}'
    assert stored_blobs(blob_dir) == []


def test_the_invocation_page_says_a_refused_body_was_not_kept(client_for, blob_dir):
    client = client_for("engineer")
    invoke(client, endpoint(), upload=SimpleUploadedFile("big.bin", b"x" * 6_291_457))
    row = only_invocation()

    page = client.get(reverse("playground:invocation", args=[row.pk])).content.decode()
    page = page.replace("\xa0", " ")  # filesizeformat keeps "6.0 MB" on one line
    download = client.get(reverse("playground:body", args=[row.pk, "request"]))

    assert "6.0 MB, not kept: the portal refused the request before sending it." in page
    assert reverse("playground:body", args=[row.pk, "request"]) not in page
    assert download.status_code == 404


def test_running_a_refused_request_again_without_its_body_says_why(client_for, blob_dir):
    client = client_for("engineer")
    target = endpoint(kind=Endpoint.Kind.SERVERLESS)
    invoke(client, target, upload=SimpleUploadedFile("big.json", b"1" * 4_000_001))
    row = only_invocation()

    response = client.post(reverse("playground:rerun", args=[row.pk]), follow=True)

    assert (
        "The portal refused this request before sending it and kept only the size of its "
        "body (4,000,001 bytes); send the body again from the playground."
    ) in response.content.decode()
    assert Invocation.objects.count() == 1
