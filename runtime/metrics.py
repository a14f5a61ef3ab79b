"""Per-minute metrics per endpoint and variant, named and measured as SageMaker publishes them
(latencies in microseconds), kept in memory for the last day."""

import threading
import time

RETENTION_SECONDS = 24 * 3600


class Metrics:
    """Sum, count, minimum and maximum of each metric in each minute."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (endpoint, variant, metric, minute) -> [sum, count, minimum, maximum]
        self.points: dict[tuple[str, str, str, int], list[float]] = {}

    def add(
        self, endpoint: str, variant: str, metric: str, value: float, when: float | None = None
    ):
        minute = int((when or time.time()) // 60 * 60)
        key = (endpoint, variant, metric, minute)
        with self.lock:
            point = self.points.get(key)
            if point is None:
                self.points[key] = [value, 1, value, value]
                if len(self.points) % 1000 == 0:
                    self.forget_old()
            else:
                point[0] += value
                point[1] += 1
                point[2] = min(point[2], value)
                point[3] = max(point[3], value)

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
                (key, list(value))
                for key, value in self.points.items()
                if key[0] == endpoint and start <= key[3] < end
            ]
        rows.sort(key=lambda row: (row[0][3], row[0][1], row[0][2]))
        return [
            {
                "VariantName": variant,
                "MetricName": metric,
                "Timestamp": minute,
                "Sum": total,
                "SampleCount": count,
                "Minimum": minimum,
                "Maximum": maximum,
                "Average": total / count,
            }
            for (_, variant, metric, minute), (total, count, minimum, maximum) in rows
        ]
