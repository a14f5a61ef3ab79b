"""Answers are shown safely: JSON indented, CSV as a table, images by URL, the rest as escaped
text; nothing a model writes becomes HTML."""

import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from playground import rendering
from playground.views import result_context
from tests.playground.factories import invocation


def test_json_is_pretty_printed():
    shown = rendering.render(b'{"predictions":[0,1]}', "application/json")

    assert shown.kind == "json"
    assert shown.text == '{\n  "predictions": [\n    0,\n    1\n  ]\n}'


def test_json_nested_too_deep_to_read_is_shown_as_text():
    deep = b"[" * 100_000 + b"]" * 100_000

    shown = rendering.render(deep, "application/json")

    assert shown.kind == "text"


def test_json_with_a_huge_number_is_shown_as_text():
    shown = rendering.render(b"[" + b"9" * 5000 + b"]", "application/json")

    assert shown.kind == "text"


def test_csv_becomes_table_rows():
    shown = rendering.render(b"label,score\nsetosa,0.9\n", "text/csv; charset=utf-8")

    assert shown.kind == "table"
    assert shown.rows == [["label", "score"], ["setosa", "0.9"]]


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "image/gif", "image/webp"])
def test_raster_images_are_images(content_type):
    assert rendering.render(b"\x89PNG...", content_type).kind == "image"


@pytest.mark.parametrize("content_type", ["image/svg+xml", "text/html"])
def test_svg_and_html_are_only_text(content_type):
    assert rendering.render(b"<svg onload=alert(1)>", content_type).kind == "text"


def test_undecodable_bytes_are_binary():
    assert rendering.render(b"\xff\xfe\x00\x01", "application/octet-stream").kind == "binary"


def test_a_long_answer_is_cut_at_the_preview_size(settings):
    data = b"a" * (rendering.conf.PREVIEW_BYTES + 10)

    shown = rendering.render(data, "text/plain")

    assert shown.truncated
    assert len(shown.text) == rendering.conf.PREVIEW_BYTES
    assert shown.size == len(data)


@pytest.mark.django_db
def test_model_output_is_escaped_inside_hx_disable():
    row = invocation(
        response_inline=b'<img src=x onerror=alert(1)><div hx-get="/x" hx-trigger="load">',
        response_content_type="text/html",
    )

    html = render_to_string("playground/_result.html", result_context(row))

    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert re.search(r'<div class="pg-body" hx-disable>\s*<pre class="pg-pre">&lt;img', html)


@pytest.mark.django_db
def test_response_image_is_served_with_its_type_and_nosniff(client_for, user_for):
    user = user_for("engineer")
    row = invocation(user=user, response_inline=b"\x89PNG\r\n", response_content_type="image/png")
    client = client_for("anon")
    client.force_login(user)

    shown = client.get(reverse("playground:body", args=[row.pk, "response"]))

    assert shown["Content-Type"] == "image/png"
    assert shown["X-Content-Type-Options"] == "nosniff"
    assert shown.content == b"\x89PNG\r\n"


@pytest.mark.django_db
def test_html_answer_is_downloaded_not_rendered(client_for, user_for):
    user = user_for("engineer")
    row = invocation(
        user=user, response_inline=b"<script>1</script>", response_content_type="text/html"
    )
    client = client_for("anon")
    client.force_login(user)

    shown = client.get(reverse("playground:body", args=[row.pk, "response"]))

    assert shown["Content-Type"] == "application/octet-stream"
    assert shown["Content-Disposition"].startswith("attachment;")
