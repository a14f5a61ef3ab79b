"""In a real browser, an Engineer opens an endpoint's insights: plotly draws the captured-traffic
charts, the provider's charts and the cost load after, and a load test's page draws its chart,
with no console error or CSP violation."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from insights.models import LoadTestRun, MinuteRollup
from tests.conftest import sign_in
from tests.insights.factories import captured_record, insights_endpoint

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"


def drawn(page, chart_id: str) -> None:
    """Wait until plotly has drawn its SVG into the chart's element."""
    page.wait_for_selector(f"#{chart_id} svg.main-svg", timeout=20_000)


def test_engineer_sees_plotly_draw_the_insights_charts(page, user_for, runtime_url) -> None:
    endpoint = insights_endpoint()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for minutes in range(0, 50, 5):
        MinuteRollup.objects.create(
            endpoint=endpoint,
            variant="AllTraffic" if minutes % 10 else "Challenger",
            minute=now - timedelta(minutes=minutes),
            count=10 + minutes,
            request_bytes=70 * (10 + minutes),
            response_bytes=20 * (10 + minutes),
            content_types={"in": {"text/csv": 10 + minutes}, "out": {"application/json": 10}},
        )
    captured_record(endpoint, input_data="5.1,3.5,1.4,0.2")
    run = LoadTestRun.objects.create(
        endpoint=endpoint,
        payloads=["1,1"],
        content_type="text/csv",
        requests=30,
        concurrency=2,
        status=LoadTestRun.Status.DONE,
        sent=30,
        summary={
            "ok": 29,
            "failed": 1,
            "errors": {"ModelError": 1},
            "throughput": 12.5,
            "latency_ms": {"p50": 8.1, "p95": 20.3, "p99": 31.0, "max": 31.0},
            "series": [[0, 10, 0, 8.0], [1, 12, 1, 9.5], [2, 7, 0, 7.7]],
        },
    )
    sign_in(page, user_for("engineer").username)

    page.goto(f"/insights/endpoints/{endpoint.pk}/?range=1h")
    for chart in ("chart-invocations", "chart-targets", "chart-sizes", "chart-content-types"):
        drawn(page, chart)
    drawn(page, "chart-latency")  # the provider's charts arrive by htmx after the page
    drawn(page, "chart-instances")
    page.wait_for_selector("#cost .recommendation")
    page.wait_for_selector("form.loadtest-form")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "insights-endpoint.png"), full_page=True)
    captured = page.locator("#stat-captured").inner_text()

    page.click("a:text-is('Captured records')")
    page.wait_for_selector("table.records")
    rows = page.locator("table.records tbody tr").count()
    page.screenshot(path=str(SCREENSHOTS / "insights-records.png"), full_page=True)

    page.goto(f"/insights/load-tests/{run.pk}/")
    drawn(page, "chart-load-test")
    failed = page.locator("#run-failed").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "insights-load-test.png"), full_page=True)

    assert captured == str(sum(10 + minutes for minutes in range(0, 50, 5)))
    assert rows == 1
    assert failed == "1"
