"""An invalid records filter is named and nothing is listed or exported under it: a page that
listed every record beside the error would look as if the filter had applied."""

import pytest
from django.urls import reverse

from tests.insights.factories import captured_record, insights_endpoint

pytestmark = pytest.mark.django_db

BAD_FILTERS = [
    ({"status": "bogus"}, "Select a valid choice. bogus is not one of the available choices."),
    ({"variant": "v" * 64}, "Ensure this value has at most 63 characters (it has 64)."),
    ({"target": "t" * 1025}, "Ensure this value has at most 1024 characters (it has 1025)."),
    ({"q": "q" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
    ({"q": "needle\x00"}, "Null characters are not allowed."),
]
NOT_SHOWN = "Records are not shown until the filter is fixed."


@pytest.fixture
def endpoint():
    endpoint = insights_endpoint()
    captured_record(endpoint, inference_id="order-1")
    captured_record(endpoint, inference_id="order-2")
    return endpoint


@pytest.mark.parametrize(("query", "message"), BAD_FILTERS)
def test_viewer_sees_a_bad_filter_named_and_no_records_listed(client_for, endpoint, query, message):
    response = client_for("viewer").get(reverse("insights:records", args=[endpoint.pk]), query)

    page = response.content.decode()
    assert response.status_code == 200
    assert message in page
    assert NOT_SHOWN in page
    assert list(response.context["records"]) == []
    assert "order-1" not in page and "order-2" not in page
    assert "No records match" not in page  # it is the filter that is wrong, not the data


def test_a_bad_filter_keeps_what_the_user_typed(client_for, endpoint):
    typed = "q" * 201

    response = client_for("viewer").get(
        reverse("insights:records", args=[endpoint.pk]), {"q": typed, "target": "model-a.tar.gz"}
    )

    page = response.content.decode()
    assert f'value="{typed}"' in page
    assert 'value="model-a.tar.gz"' in page


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
@pytest.mark.parametrize(("query", "message"), BAD_FILTERS)
def test_a_download_with_a_bad_filter_is_refused_with_the_reason(
    client_for, endpoint, query, message, file_format
):
    response = client_for("viewer").get(
        reverse("insights:download", args=[endpoint.pk]), query | {"format": file_format}
    )

    text = response.content.decode()
    assert response.status_code == 400
    assert message in text
    assert "order-1" not in text and "order-2" not in text
    assert "Content-Disposition" not in response


def test_a_download_with_a_bad_time_range_is_refused_rather_than_taking_a_day(client_for, endpoint):
    response = client_for("viewer").get(
        reverse("insights:download", args=[endpoint.pk]),
        {"range": "custom", "start": "2026-01-02T00:00", "end": "2026-01-01T00:00"},
    )

    assert response.status_code == 400
    assert "The custom range must end after it starts." in response.content.decode()


def test_a_valid_filter_still_lists_and_downloads_what_matches(client_for, endpoint):
    client = client_for("viewer")
    query = {"q": "order-2", "status": "answered"}

    listed = client.get(reverse("insights:records", args=[endpoint.pk]), query)
    downloaded = client.get(reverse("insights:download", args=[endpoint.pk]), query)

    assert [record.inference_id for record in listed.context["records"]] == ["order-2"]
    assert NOT_SHOWN not in listed.content.decode()
    assert downloaded.status_code == 200
    lines = b"".join(downloaded.streaming_content).decode().splitlines()
    assert len(lines) == 1 and "order-2" in lines[0]
