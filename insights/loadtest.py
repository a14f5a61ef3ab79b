"""Load tests: send N requests, C at a time, through the backend, saving progress every half
second so the page can show it while it runs, and keeping the results."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from environments.backends.base import ProviderError
from insights import conf
from insights.models import LoadTestRun


def percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Tally:
    """What came back so far, shared by the sending threads behind a lock."""

    started: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    # second since start -> [ok, errors, latency sum]
    seconds: dict[int, list[float]] = field(default_factory=dict)
    next_index: int = 0

    def add(self, latency_ms: float, error_code: str | None) -> None:
        second = int(time.monotonic() - self.started)
        with self.lock:
            bucket = self.seconds.setdefault(second, [0, 0, 0.0])
            if error_code is None:
                self.latencies.append(latency_ms)
                bucket[0] += 1
                bucket[2] += latency_ms
            else:
                self.errors[error_code] = self.errors.get(error_code, 0) + 1
                bucket[1] += 1

    def take_index(self, limit: int) -> int | None:
        with self.lock:
            if self.next_index >= limit:
                return None
            self.next_index += 1
            return self.next_index - 1

    def summary(self) -> dict:
        with self.lock:
            ordered = sorted(self.latencies)
            errors = dict(self.errors)
            seconds = {second: list(values) for second, values in self.seconds.items()}
        elapsed = max(time.monotonic() - self.started, 1e-6)
        done = len(ordered) + sum(errors.values())
        return {
            "ok": len(ordered),
            "failed": sum(errors.values()),
            "errors": errors,
            "elapsed_s": round(elapsed, 2),
            "throughput": round(done / elapsed, 2),
            "latency_ms": {
                name: round(value, 2) if value is not None else None
                for name, value in (
                    ("p50", percentile(ordered, 0.50)),
                    ("p95", percentile(ordered, 0.95)),
                    ("p99", percentile(ordered, 0.99)),
                    ("max", ordered[-1] if ordered else None),
                )
            },
            "series": [
                [second, int(ok), int(failed), round(total / ok, 2) if ok else None]
                for second, (ok, failed, total) in sorted(seconds.items())
            ],
        }


# Past the task's hard time limit (insights/tasks.py), a run still marked running lost its
# worker: a redelivered task finds it claimed and leaves it, so it is ended here instead.
STALLED_AFTER = timedelta(seconds=960)


def stalled(load: LoadTestRun) -> bool:
    """End a run whose worker died; True when it did."""
    if load.status != LoadTestRun.Status.RUNNING or load.started_at is None:
        return False
    if timezone.now() - load.started_at < STALLED_AFTER:
        return False
    return bool(
        LoadTestRun.objects.filter(pk=load.pk, status=LoadTestRun.Status.RUNNING).update(
            status=LoadTestRun.Status.FAILED,
            error="Stopped: the worker running it was lost. The results so far are kept.",
            finished_at=timezone.now(),
        )
    )


def run(run_id: int) -> None:
    """Send the run's requests. Claims the run first, so a task delivered twice sends once."""
    claimed = LoadTestRun.objects.filter(pk=run_id, status=LoadTestRun.Status.QUEUED).update(
        status=LoadTestRun.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    load = LoadTestRun.objects.select_related("endpoint__environment").get(pk=run_id)
    backend = load.endpoint.environment.backend
    backend.runtime  # noqa: B018 (make the shared client before the threads race to make it)
    payloads = [payload.encode("utf-8") for payload in load.payloads] or [b""]
    tally = Tally(started=time.monotonic())
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            index = tally.take_index(load.requests)
            if index is None:
                return
            started = time.perf_counter()
            try:
                backend.invoke(
                    load.endpoint.name,
                    payloads[index % len(payloads)],
                    content_type=load.content_type,
                    target_model=load.target_model,
                )
                error = None
            except ProviderError as failure:
                error = failure.code or "Error"
            except Exception as failure:  # noqa: BLE001 (one bad request must not end the run)
                error = type(failure).__name__
            tally.add((time.perf_counter() - started) * 1000, error)

    concurrency = max(1, min(load.concurrency, conf.LOADTEST_MAX_CONCURRENCY))
    status = LoadTestRun.Status.DONE
    error_text = ""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        workers = [pool.submit(send) for _ in range(concurrency)]
        try:
            while not all(worker.done() for worker in workers):
                time.sleep(conf.LOADTEST_PROGRESS_SECONDS)
                summary = tally.summary()
                LoadTestRun.objects.filter(pk=run_id).update(
                    sent=summary["ok"] + summary["failed"], summary=summary
                )
                if LoadTestRun.objects.filter(pk=run_id, cancel_requested=True).exists():
                    stop.set()
                    status = LoadTestRun.Status.CANCELLED
        except BaseException as failure:  # a time limit or shutdown: stop sending, keep results
            stop.set()
            status, error_text = LoadTestRun.Status.FAILED, f"Stopped: {failure!r}"
            raise
        finally:
            summary = tally.summary()
            LoadTestRun.objects.filter(pk=run_id).update(
                sent=summary["ok"] + summary["failed"],
                summary=summary,
                status=status,
                error=error_text,
                finished_at=timezone.now(),
            )
