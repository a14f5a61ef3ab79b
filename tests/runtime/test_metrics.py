"""The runtime's per-minute metrics answer latency percentiles as CloudWatch's extended
statistics do, from histograms of 5%-wide buckets."""

from datetime import UTC, datetime, timedelta

import pytest

from environments.backends.base import ProviderError
from environments.backends.local import LocalBackend, combine
from environments.models import Environment
from runtime.metrics import Metrics

MINUTE = 1_800_000_000.0  # a whole minute, as epoch seconds


def test_latency_percentiles_are_within_the_bucket_width_of_the_exact_ones() -> None:
    metrics = Metrics()
    values = [100.0 * (index + 1) for index in range(1000)]  # 100 us .. 100,000 us
    for number, value in enumerate(values):
        metrics.add("iris", "AllTraffic", "ModelLatency", value, MINUTE + number % 120)
    points = metrics.query("iris", MINUTE, MINUTE + 180)

    assert len(points) == 2  # two minutes, folded together below as a 2-minute period would be
    for stat, exact in (("p50", 50_000), ("p95", 95_000), ("p99", 99_000), ("p99.9", 99_900)):
        assert combine(points, stat) == pytest.approx(exact, rel=0.05), stat
    assert combine(points, "Maximum") == 100_000
    assert combine(points, "SampleCount") == 1000


def test_counts_carry_no_histogram_and_percentiles_of_them_are_refused() -> None:
    metrics = Metrics()
    metrics.add("iris", "AllTraffic", "Invocations", 1, MINUTE)
    backend = LocalBackend(Environment(name="local", kind="local"), runtime_url="http://x")
    now = datetime.now(UTC)

    assert "Histogram" not in metrics.query("iris", MINUTE, MINUTE + 60)[0]
    with pytest.raises(ProviderError, match="percentiles"):
        backend.metric_series("iris", "", "Invocations", now - timedelta(hours=1), now, stat="p50")
