"""Per-minute metrics per endpoint and variant, named and measured as SageMaker publishes them
(latencies in microseconds), kept in memory for the last day."""

import math
import threading
import time

RETENTION_SECONDS = 24 * 3600
# Latencies also go into a histogram of buckets 5% wide, so percentiles (p50, p95, p99) can be
# answered for any period, as CloudWatch's extended statistics are, within 2.5%.
BUCKET_GROWTH = 1.05
LOG_GROWTH = math.log(BUCKET_GROWTH)


def bucket_of(value: float) -> int:
    return int(math.log(max(value, 1.0)) / LOG_GROWTH)


def bucket_value(bucket: int) -> float:
    """The middle of a bucket: what a percentile falling in it reports."""
    return BUCKET_GROWTH ** (bucket + 0.5)


def percentile(histograms: list[dict], fraction: float) -> float:
    """The `fraction` percentile of the values counted in these histograms (bucket -> count)."""
    merged: dict[int, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + count
    total = sum(merged.values())
    if not total:
        return 0.0
    rank, seen = fraction * total, 0
    for bucket in sorted(merged):
        seen += merged[bucket]
        if seen >= rank:
            return bucket_value(bucket)
    return bucket_value(max(merged))


class Metrics:
    """Sum, count, minimum and maximum of each metric in each minute, and for latencies a
    histogram too."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (endpoint, variant, metric, minute) -> [sum, count, minimum, maximum, histogram]
        self.points: dict[tuple[str, str, str, int], list] = {}

    def add(
        self, endpoint: str, variant: str, metric: str, value: float, when: float | None = None
    ):
        minute = int((when or time.time()) // 60 * 60)
        key = (endpoint, variant, metric, minute)
        with self.lock:
            point = self.points.get(key)
            if point is None:
                histogram = {} if metric.endswith("Latency") else None
                point = self.points[key] = [0.0, 0, value, value, histogram]
                if len(self.points) % 1000 == 0:
                    self.forget_old()
            point[0] += value
            point[1] += 1
            point[2] = min(point[2], value)
            point[3] = max(point[3], value)
            if point[4] is not None:
                bucket = bucket_of(value)
                point[4][bucket] = point[4].get(bucket, 0) + 1

    def gauge(self, endpoint: str, variant: str, metric: str, value: float) -> None:
        """A level rather than an event (instance count, loaded models): recorded each minute."""
        self.add(endpoint, variant, metric, value)

    def forget_old(self) -> None:
        horizon = time.time() - RETENTION_SECONDS
        for key in [key for key in self.points if key[3] < horizon]:
            del self.points[key]

    def query(self, endpoint: str, start: float, end: float) -> list[dict]:
        """Datapoints of `endpoint` with start <= minute < end, oldest first."""
        with self.lock:
            rows = [
                (key, [*value[:4], dict(value[4]) if value[4] is not None else None])
                for key, value in self.points.items()
                if key[0] == endpoint and start <= key[3] < end
            ]
        rows.sort(key=lambda row: (row[0][3], row[0][1], row[0][2]))
        points = []
        for (_, variant, metric, minute), (total, count, minimum, maximum, histogram) in rows:
            point = {
                "VariantName": variant,
                "MetricName": metric,
                "Timestamp": minute,
                "Sum": total,
                "SampleCount": count,
                "Minimum": minimum,
                "Maximum": maximum,
                "Average": total / count,
            }
            if histogram is not None:
                point["Histogram"] = histogram
            points.append(point)
        return points
