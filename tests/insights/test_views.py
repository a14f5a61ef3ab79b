"""Insights pages: charts from rollups, the records browser, downloads, record detail, cost and
load-test starts, as each role sees them."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.urls import reverse

from insights import charts, cost
from insights.models import LoadTestRun, MinuteRollup
from tests.insights.factories import captured_record, insights_endpoint

pytestmark = pytest.mark.django_db


def rollup(endpoint, minutes_ago: int, count: int, variant: str = "AllTraffic") -> MinuteRollup:
    minute = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)
    return MinuteRollup.objects.create(
        endpoint=endpoint,
        variant=variant,
        minute=minute,
        count=count,
        request_bytes=10 * count,
        response_bytes=20 * count,
        content_types={"in": {"text/csv": count}, "out": {"application/json": count}},
    )


def chart_json(response, chart_id: str) -> dict:
    """The figure the page hands plotly in the chart's data-figure attribute."""
    html = response.content.decode()
    start = html.index(f'id="{chart_id}" data-figure="') + len(f'id="{chart_id}" data-figure="')
    return json.loads(unescape(html[start : html.index('"', start)]))


def test_endpoint_page_charts_captured_invocations_per_variant_from_rollups(client_for) -> None:
    endpoint = insights_endpoint()
    rollup(endpoint, 5, 7)
    rollup(endpoint, 5, 3, variant="Challenger")
    rollup(endpoint, 60 * 30, 100)  # outside the last 24 hours

    response = client_for("viewer").get(
        reverse("insights:endpoint", args=[endpoint.pk]), {"range": "24h"}
    )

    figure = chart_json(response, "chart-invocations")
    totals = {trace["name"]: sum(trace["y"]) for trace in figure["data"]}
    assert response.status_code == 200
    assert totals == {"AllTraffic": 7, "Challenger": 3}
    assert all(trace["type"] == "bar" for trace in figure["data"])  # no WebGL trace types
    assert b'id="chart-content-types" data-figure=' in response.content


def test_a_custom_range_that_ends_before_it_starts_says_so(client_for) -> None:
    endpoint = insights_endpoint()

    response = client_for("viewer").get(
        reverse("insights:endpoint", args=[endpoint.pk]),
        {"range": "custom", "start": "2026-01-02T00:00", "end": "2026-01-01T00:00"},
    )

    assert response.status_code == 200
    assert b"The custom range must end after it starts." in response.content


def test_a_custom_window_picks_a_step_that_keeps_points_few() -> None:
    span = charts.window("custom", "2026-01-01T00:00", "2026-01-08T00:00")

    assert span.step == 3600
    assert len(span.buckets()) <= charts.MAX_POINTS


def test_records_are_filtered_by_variant_status_and_payload_search(client_for) -> None:
    endpoint = insights_endpoint()
    captured_record(endpoint, inference_id="wanted", input_data="needle,1")
    captured_record(
        endpoint, inference_id="other-variant", variant="Challenger", input_data="needle"
    )
    captured_record(endpoint, inference_id="hay-only", input_data="hay")
    captured_record(endpoint, inference_id="failed", input_data="needle", has_output=False)
    url = reverse("insights:records", args=[endpoint.pk])

    searched = client_for("viewer").get(url, {"q": "NEEDLE", "variant": "AllTraffic"})
    failed = client_for("viewer").get(url, {"status": "no-output"})

    assert b"wanted" in searched.content
    assert b"other-variant" not in searched.content
    assert b"hay-only" not in searched.content
    assert b"failed" in failed.content
    assert b"wanted" not in failed.content


def test_record_detail_pretty_prints_json_and_escapes_what_the_model_wrote(client_for) -> None:
    record = captured_record(output_data='{"answer": "<script>alert(1)</script>"}')

    response = client_for("viewer").get(
        reverse("insights:record", args=[record.endpoint_id, record.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{\n  &quot;answer&quot;: " in html  # indented JSON
    assert "hx-disable" in html


def test_a_record_of_another_endpoint_is_not_found(client_for) -> None:
    record = captured_record()
    other = insights_endpoint()

    response = client_for("viewer").get(reverse("insights:record", args=[other.pk, record.pk]))

    assert response.status_code == 404


def test_csv_download_defuses_spreadsheet_formulas(client_for) -> None:
    endpoint = insights_endpoint()
    captured_record(endpoint, input_data='=HYPERLINK("http://evil")', inference_id="@sum")

    response = client_for("viewer").get(
        reverse("insights:download", args=[endpoint.pk]), {"format": "csv"}
    )

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Disposition"].endswith('.csv"')
    assert rows[0][6] == "input"
    assert rows[1][6] == '\'=HYPERLINK("http://evil")'
    assert rows[1][3] == "'@sum"


def test_jsonl_download_is_sagemakers_capture_format(client_for) -> None:
    endpoint = insights_endpoint()
    captured_record(endpoint, input_data="5.1,3.5", inference_id="order-7")

    response = client_for("viewer").get(reverse("insights:download", args=[endpoint.pk]))

    lines = b"".join(response.streaming_content).decode().splitlines()
    record = json.loads(lines[0])
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "5.1,3.5",
        "encoding": "CSV",
    }
    assert record["eventMetadata"]["inferenceId"] == "order-7"
    assert record["eventVersion"] == "0"


def test_cost_compares_the_kinds_and_recommends_in_plain_words() -> None:
    endpoint = insights_endpoint()
    rollup(endpoint, 5, 60)  # a quiet endpoint: 60 requests in the last hour

    estimate = cost.estimate(endpoint, charts.window("1h"), duration_s=0.05)

    by_kind = {option.kind: option for option in estimate.options}
    assert by_kind["real-time"].current
    assert by_kind["real-time"].monthly == pytest.approx(0.115 * 730 + 30 * 0.14)
    assert by_kind["serverless"].monthly < by_kind["real-time"].monthly
    assert estimate.recommendation.startswith("Consider serverless")
    assert "no data capture" in estimate.recommendation
    assert any("50 ms" in line for line in estimate.assumptions)


def test_viewer_sees_no_load_test_form(client_for) -> None:
    endpoint = insights_endpoint()

    response = client_for("viewer").get(reverse("insights:endpoint", args=[endpoint.pk]))

    assert b"Start load test" not in response.content


def test_engineer_starts_a_load_test_from_pasted_payloads(client_for, monkeypatch) -> None:
    from insights import views

    sent = []
    monkeypatch.setattr(views.run_load_test, "delay_on_commit", sent.append)
    endpoint = insights_endpoint()

    response = client_for("engineer").post(
        reverse("insights:start_load_test", args=[endpoint.pk]),
        {
            "requests": "20",
            "concurrency": "2",
            "source": "pasted",
            "payloads": "1,1\n\n2,2\n",
            "content_type": "text/csv",
        },
    )

    run = LoadTestRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("insights:load_test", args=[run.pk])
    assert run.payloads == ["1,1", "2,2"]
    assert (run.requests, run.concurrency, run.status) == (20, 2, "queued")
    assert sent == [run.pk]


def test_a_load_test_beyond_the_limits_is_refused_with_the_limits(client_for) -> None:
    endpoint = insights_endpoint()

    response = client_for("engineer").post(
        reverse("insights:start_load_test", args=[endpoint.pk]),
        {"requests": "999999", "concurrency": "500", "source": "recorded"},
    )

    assert response.status_code == 200
    assert b"less than or equal to 5000" in response.content
    assert b"less than or equal to 16" in response.content
    assert not LoadTestRun.objects.exists()


def test_replaying_recorded_payloads_needs_captured_requests(client_for) -> None:
    endpoint = insights_endpoint()

    response = client_for("engineer").post(
        reverse("insights:start_load_test", args=[endpoint.pk]),
        {"requests": "5", "concurrency": "1", "source": "recorded"},
    )

    assert b"no captured requests to replay yet" in response.content
    assert not LoadTestRun.objects.exists()


def test_cancelling_a_queued_load_test_ends_it(client_for) -> None:
    run = LoadTestRun.objects.create(
        endpoint=insights_endpoint(),
        payloads=["1"],
        content_type="text/csv",
        requests=5,
        concurrency=1,
    )

    client_for("engineer").post(reverse("insights:cancel_load_test", args=[run.pk]))

    run.refresh_from_db()
    assert run.status == LoadTestRun.Status.CANCELLED
    assert run.cancel_requested


def test_index_lists_endpoints_with_their_captured_traffic(client_for) -> None:
    endpoint = insights_endpoint()
    rollup(endpoint, 3, 42)

    response = client_for("viewer").get(reverse("insights:index"))

    assert b"iris" in response.content
    assert b"42" in response.content
    assert b"On, 100%" in response.content


def test_the_endpoint_pages_insights_link_opens_that_endpoints_charts(client_for) -> None:
    endpoint = insights_endpoint()

    response = client_for("viewer").get(reverse("insights:index"), {"endpoint": endpoint.pk})

    assert response.status_code == 302
    assert response["Location"] == reverse("insights:endpoint", args=[endpoint.pk])


def test_a_load_test_delivered_twice_sends_once() -> None:
    from insights import loadtest

    run = LoadTestRun.objects.create(
        endpoint=insights_endpoint(),
        payloads=["1"],
        content_type="text/csv",
        requests=5,
        concurrency=1,
        status=LoadTestRun.Status.RUNNING,  # the first delivery claimed it
    )

    loadtest.run(run.pk)

    run.refresh_from_db()
    assert run.sent == 0
    assert run.status == LoadTestRun.Status.RUNNING


def test_a_run_whose_worker_was_lost_is_shown_as_stopped(client_for) -> None:
    run = LoadTestRun.objects.create(
        endpoint=insights_endpoint(),
        payloads=["1"],
        content_type="text/csv",
        requests=50,
        concurrency=1,
        status=LoadTestRun.Status.RUNNING,
        started_at=datetime.now(UTC) - timedelta(hours=1),
        sent=20,
    )

    response = client_for("viewer").get(reverse("insights:load_test", args=[run.pk]))

    run.refresh_from_db()
    assert run.status == LoadTestRun.Status.FAILED
    assert b"the worker running it was lost" in response.content
    assert b"20 of 50 sent" in response.content
