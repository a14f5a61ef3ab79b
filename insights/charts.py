"""Chart data: plotly figures (plain dicts, drawn by static/insights/charts.js) for one endpoint
over a time window. Captured-traffic charts read rollups only; latency, errors and scaling come
from the provider's metrics through the backend (CloudWatch and Application Auto Scaling on
aws, the runtime's own metrics locally). Each figure says where its numbers come from."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Sum, TextField
from django.db.models.functions import Cast

from endpoints.models import Endpoint
from environments.backends.base import ProviderError
from insights.models import MinuteRollup

RANGES = {
    "1h": ("Last hour", timedelta(hours=1), 60),
    "6h": ("Last 6 hours", timedelta(hours=6), 60),
    "24h": ("Last 24 hours", timedelta(hours=24), 300),
    "7d": ("Last 7 days", timedelta(days=7), 3600),
}
MAX_POINTS = 500
COLORS = ["#1f4fd1", "#12805c", "#b45309", "#6633cc", "#c4302b", "#0b5cad", "#5b6675"]
BASE_LAYOUT = {
    "margin": {"l": 56, "r": 16, "t": 8, "b": 40},
    "height": 260,
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#ffffff",
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    "legend": {"orientation": "h", "y": -0.22},
    "xaxis": {"type": "date", "gridcolor": "#eef1f6"},
    "yaxis": {"gridcolor": "#eef1f6", "rangemode": "tozero"},
    "hovermode": "x unified",
}


class WindowError(ValueError):
    """A custom time range that cannot be shown; the message says how to fix it."""


@dataclass(frozen=True)
class Window:
    """A time range and the bucket each point covers."""

    key: str
    start: datetime
    end: datetime
    step: int  # seconds per point

    @property
    def label(self) -> str:
        if self.key in RANGES:
            return RANGES[self.key][0]
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    def bucket(self, moment: datetime) -> datetime:
        seconds = int(moment.timestamp()) // self.step * self.step
        return datetime.fromtimestamp(seconds, UTC)

    def buckets(self) -> list[datetime]:
        """Every bucket start in the window, so quiet periods show as zero, not as a gap."""
        first = self.bucket(self.start)
        count = int((self.end - first).total_seconds() // self.step) + 1
        return [first + timedelta(seconds=self.step * index) for index in range(count)]


def window(key: str = "24h", start: str = "", end: str = "", now: datetime | None = None) -> Window:
    """The window a range selector names. A custom one takes ISO times (UTC when no zone)."""
    now = now or datetime.now(UTC)
    if key in RANGES:
        _, span, step = RANGES[key]
        return Window(key, floor(now - span, step), now, step)
    if key != "custom":
        raise WindowError("Choose last hour, 6 hours, 24 hours, 7 days or a custom range.")
    try:
        begin, finish = parse_time(start), parse_time(end) if end else now
    except (ValueError, OverflowError) as error:  # OverflowError: a zone past year 1 or 9999
        raise WindowError(
            "Give the custom range as dates and times, such as 2026-01-15T10:00."
        ) from error
    if finish <= begin:
        raise WindowError("The custom range must end after it starts.")
    if finish - begin > timedelta(days=62):
        raise WindowError("Choose a custom range of at most 62 days.")
    seconds = (finish - begin).total_seconds()
    step = 60
    for candidate in (60, 300, 900, 3600, 6 * 3600, 86400):
        step = candidate
        if seconds / candidate <= MAX_POINTS:
            break
    return Window("custom", floor(begin, step), finish, step)


def floor(moment: datetime, step: int) -> datetime:
    """The moment rounded down to a whole step, so that every bucket, here and in CloudWatch's
    answer (it rounds StartTime down too), starts on the same boundaries."""
    return datetime.fromtimestamp(int(moment.timestamp()) // step * step, UTC)


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def figure(traces: list[dict], **layout: object) -> dict:
    merged = {**BASE_LAYOUT, **layout}
    for axis in ("xaxis", "yaxis"):
        if axis in layout:
            merged[axis] = {**BASE_LAYOUT.get(axis, {}), **layout[axis]}
    return {"data": traces, "layout": merged}


def line(name: str, x: list, y: list, index: int, **extra: object) -> dict:
    return {
        "type": "scatter",
        # Markers too: a minute with traffic between quiet ones is a lone point, which a
        # line alone does not draw.
        "mode": "lines+markers",
        "name": name,
        "x": x,
        "y": y,
        "line": {"color": COLORS[index % len(COLORS)], "width": 2},
        "marker": {"size": 5},
        **extra,
    }


# -- captured traffic (rollups) -----------------------------------------------------------


def sampling_percentage(endpoint: Endpoint) -> int:
    capture = endpoint.spec.get("capture") or {}
    return int(capture.get("sampling") or 100)


def traffic(endpoint: Endpoint, span: Window) -> dict:
    """Captured records per variant and per target model, request and response sizes, and
    content types, from the per-minute rollups in the window."""
    rows = MinuteRollup.objects.filter(
        endpoint=endpoint, minute__gte=span.start, minute__lt=span.end
    ).values_list(
        "variant",
        "target_model",
        "minute",
        "count",
        "without_output",
        "request_bytes",
        "response_bytes",
        # As text, decoded below: Django's JSONField converter costs more than the whole
        # chart over a week of minutes.
        Cast("content_types", TextField()),
    )
    buckets = span.buckets()
    x = [iso(moment) for moment in buckets]
    position = {moment: index for index, moment in enumerate(buckets)}
    size = len(buckets)
    by_variant: dict[str, list[int]] = defaultdict(lambda: [0] * size)
    by_target: dict[str, list[int]] = defaultdict(lambda: [0] * size)
    counts = [0] * size
    request_bytes = [0] * size
    response_bytes = [0] * size
    types: dict[tuple[str, str], int] = defaultdict(int)
    total = without_output = 0
    for variant, target, minute, count, missing, sent, received, content_types in rows:
        index = position.get(span.bucket(minute))
        if index is None:
            continue
        by_variant[variant][index] += count
        by_target[target or "(none named)"][index] += count
        counts[index] += count
        request_bytes[index] += sent
        response_bytes[index] += received
        total += count
        without_output += missing
        decoded = json.loads(content_types) if content_types else {}
        for direction in ("in", "out"):
            for name, number in decoded.get(direction, {}).items():
                types[(direction, name)] += number
    per = "minute" if span.step == 60 else f"{span.step // 60} minutes"
    invocations = figure(
        [
            {
                "type": "bar",
                "name": variant,
                "x": x,
                "y": values,
                "marker": {"color": COLORS[index % len(COLORS)]},
            }
            for index, (variant, values) in enumerate(sorted(by_variant.items()))
        ],
        barmode="stack",
        yaxis={"title": {"text": f"records per {per}"}},
    )
    targets = figure(
        [
            {
                "type": "bar",
                "name": target,
                "x": x,
                "y": values,
                "marker": {"color": COLORS[index % len(COLORS)]},
            }
            for index, (target, values) in enumerate(sorted(by_target.items()))
        ],
        barmode="stack",
        yaxis={"title": {"text": f"records per {per}"}},
    )
    average_in = [
        round(sent / n) if n else None for sent, n in zip(request_bytes, counts, strict=True)
    ]
    average_out = [
        round(got / n) if n else None for got, n in zip(response_bytes, counts, strict=True)
    ]
    sizes = figure(
        [
            line("request", x, average_in, 0, mode="lines+markers", connectgaps=True),
            line("response", x, average_out, 1, mode="lines+markers", connectgaps=True),
        ],
        yaxis={"title": {"text": "average bytes"}},
    )
    ordered = sorted(types.items(), key=lambda item: -item[1])
    content = figure(
        [
            {
                "type": "bar",
                "orientation": "h",
                "name": label,
                "y": [name for (direction, name), _ in ordered if direction == key],
                "x": [number for (direction, _), number in ordered if direction == key],
                "marker": {"color": COLORS[index]},
            }
            for index, (key, label) in enumerate((("in", "request"), ("out", "response")))
        ],
        barmode="group",
        hovermode="closest",
        xaxis={"type": "linear"},
        yaxis={"type": "category", "automargin": True},
        height=max(160, 60 + 28 * len(ordered)),
    )
    sampling = sampling_percentage(endpoint)
    return {
        "total": total,
        "estimated_invocations": round(total * 100 / sampling) if sampling else total,
        "sampling": sampling,
        "without_output": without_output,
        "variants": sorted(by_variant),
        "targets": sorted(by_target),
        "per_variant": {variant: sum(values) for variant, values in by_variant.items()},
        "per_target": {target: sum(values) for target, values in by_target.items()},
        "figures": {
            "invocations": invocations,
            "targets": targets,
            "sizes": sizes,
            "content_types": content,
        },
        "has_targets": any(target != "(none named)" for target in by_target),
    }


def captured_total(endpoint: Endpoint, since: datetime) -> int:
    found = MinuteRollup.objects.filter(endpoint=endpoint, minute__gte=since).aggregate(
        total=Sum("count")
    )
    return found["total"] or 0


# -- provider metrics ---------------------------------------------------------------------


@dataclass
class Metrics:
    """Provider charts, and the errors of the ones that could not be drawn."""

    figures: dict
    errors: dict
    activities: list
    facts: dict


def variant_names(endpoint: Endpoint) -> list[str]:
    return [variant["name"] for variant in endpoint.spec.get("variants", [])] or ["AllTraffic"]


def series(endpoint: Endpoint, variant: str, metric: str, span: Window, stat: str) -> dict:
    """{bucket: value} of one metric, from the provider."""
    points = endpoint.environment.backend.metric_series(
        endpoint.name, variant, metric, span.start, span.end, period=span.step, stat=stat
    )
    return {span.bucket(point.time): point.value for point in points}


def provider(endpoint: Endpoint, span: Window) -> Metrics:
    """Latency, errors, instances against invocations per instance, scaling activities,
    serverless cold starts and the async backlog. A chart whose call fails says why; the others
    are still drawn."""
    result = Metrics(figures={}, errors={}, activities=[], facts={})
    buckets = span.buckets()
    x = [iso(moment) for moment in buckets]
    variants = variant_names(endpoint)
    local = endpoint.environment.is_local

    def values(found: dict, scale: float = 1.0) -> list:
        return [round(found[moment] * scale, 3) if moment in found else None for moment in buckets]

    def attempt(name: str, build: object) -> None:
        try:
            build()
        except ProviderError as error:
            result.errors[name] = error

    def latency() -> None:
        stats = ["p50", "p95", "p99"]  # CloudWatch's, or the local runtime's histograms
        traces = []
        for variant in variants:
            for stat in stats:
                found = series(endpoint, variant, "ModelLatency", span, stat)
                label = f"{variant} {stat.lower()}" if len(variants) > 1 else stat.lower()
                traces.append(line(label, x, values(found, 0.001), len(traces)))
        result.figures["latency"] = figure(traces, yaxis={"title": {"text": "model latency, ms"}})

    def errors() -> None:
        traces = []
        for metric, label in (("Invocation4XXErrors", "4xx"), ("Invocation5XXErrors", "5xx")):
            found: dict = defaultdict(float)
            for variant in variants:
                for moment, value in series(endpoint, variant, metric, span, "Sum").items():
                    found[moment] += value
            traces.append(
                {
                    "type": "bar",
                    "name": label,
                    "x": x,
                    "y": values(found),
                    "marker": {"color": "#b45309" if label == "4xx" else "#c4302b"},
                }
            )
        result.figures["errors"] = figure(
            traces, barmode="stack", yaxis={"title": {"text": "errors"}}
        )

    def scaling() -> None:
        minutes = span.step / 60
        scaling_spec = endpoint.spec.get("autoscaling") or {}
        count_traces, rate_traces = [], []
        counts_by_variant = {}
        for index, variant in enumerate(variants):
            if local:
                counts = series(endpoint, variant, "CurrentInstanceCount", span, "Maximum")
            else:
                # CloudWatch has no instance-count metric: Invocations / InvocationsPerInstance
                # is the count in every minute that had traffic.
                calls = series(endpoint, variant, "Invocations", span, "Sum")
                per = series(endpoint, variant, "InvocationsPerInstance", span, "Sum")
                counts = {m: round(calls[m] / per[m]) for m in calls if per.get(m)}
            counts_by_variant[variant] = counts
            per_instance = series(endpoint, variant, "InvocationsPerInstance", span, "Sum")
            count_traces.append(
                line(variant, x, values(counts), index, line_shape="hv", connectgaps=True)
            )
            rate_traces.append(line(variant, x, values(per_instance, 1 / minutes), index))
        if scaling_spec.get("enabled") and scaling_spec.get("target"):
            target = float(scaling_spec["target"])
            rate_traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"target {target:g}",
                    "x": [x[0], x[-1]],
                    "y": [target, target],
                    "line": {"color": "#c4302b", "dash": "dash", "width": 2},
                }
            )
        result.figures["instances"] = figure(
            count_traces, yaxis={"title": {"text": "instances"}, "dtick": 1}
        )
        result.figures["per_instance"] = figure(
            rate_traces, yaxis={"title": {"text": "invocations per instance per minute"}}
        )
        result.facts["instances"] = {
            variant: list(counts.values()) for variant, counts in counts_by_variant.items()
        }
        result.facts["max_instances"] = max(
            (max(counts.values()) for counts in counts_by_variant.values() if counts),
            default=None,
        )
        if scaling_spec.get("enabled"):
            activities_chart(counts_by_variant)

    def activities_chart(counts_by_variant: dict) -> None:
        rows, traces = [], []
        for index, variant in enumerate(variants):
            found = endpoint.environment.backend.describe_scaling_activities(endpoint.name, variant)
            counts = counts_by_variant.get(variant, {})
            # Oldest first, each activity starting from where the one before it left the
            # variant; the first from the count before it, or the configured count.
            previous = None
            for activity in sorted(found, key=lambda activity: activity.start):
                if activity.start < span.start - timedelta(days=1):
                    continue
                before = previous
                if before is None:
                    before = level_at(counts, activity.start, before=True)
                if before is None:
                    before = initial_count(endpoint, variant)
                after = desired_count(activity.description)
                if after is None:
                    after = level_at(counts, activity.end or activity.start, before=False)
                if activity.status == "Successful":
                    previous = after
                rows.append(
                    {
                        "variant": variant,
                        "start": activity.start,
                        "end": activity.end,
                        "description": activity.description,
                        "cause": activity.cause,
                        "status": activity.status,
                        "message": activity.message,
                        "before": before,
                        "after": after,
                    }
                )
            mine = [row for row in rows if row["variant"] == variant]
            if mine:
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": variant,
                        "x": [iso(row["start"]) for row in mine],
                        "y": [row["after"] for row in mine],
                        "text": [f"{row['status']}: {row['description']}" for row in mine],
                        "hovertemplate": "%{text}<extra></extra>",
                        "marker": {
                            "size": 12,
                            "symbol": "diamond",
                            "color": COLORS[index % len(COLORS)],
                        },
                    }
                )
        rows.sort(key=lambda row: row["start"], reverse=True)
        result.activities = rows
        result.facts["scale_outs"] = sum(
            1
            for row in rows
            if row["status"] == "Successful"
            and row["before"] is not None
            and row["after"] is not None
            and row["after"] > row["before"]
        )
        if traces:
            result.figures["activities"] = figure(
                traces,
                hovermode="closest",
                xaxis={"range": [iso(span.start), iso(span.end)]},
                yaxis={"title": {"text": "desired instances"}, "dtick": 1},
                height=200,
            )

    def serverless() -> None:
        traces = []
        for variant in variants:
            starts = series(endpoint, variant, "ModelSetupTime", span, "SampleCount")
            traces.append(
                {
                    "type": "bar",
                    "name": f"cold starts ({variant})" if len(variants) > 1 else "cold starts",
                    "x": x,
                    "y": values(starts),
                    "marker": {"color": COLORS[len(traces) % len(COLORS)]},
                }
            )
            setup = series(endpoint, variant, "ModelSetupTime", span, "Average")
            traces.append(
                line(
                    "setup time, s", x, values(setup, 1e-6), len(traces), yaxis="y2", mode="markers"
                )
            )
            used = series(
                endpoint, variant, "ServerlessConcurrentExecutionsUtilization", span, "Maximum"
            )
            traces.append(line("concurrency used", x, values(used, 100), len(traces)))
        result.figures["cold_starts"] = figure(
            traces,
            yaxis={"title": {"text": "cold starts"}},
            yaxis2={"title": {"text": "seconds"}, "overlaying": "y", "side": "right"},
            margin={"l": 56, "r": 56, "t": 8, "b": 40},
        )

    def backlog() -> None:
        found = series(endpoint, "", "ApproximateBacklogSize", span, "Maximum")
        without = series(endpoint, "", "HasBacklogWithoutCapacity", span, "Maximum")
        result.figures["backlog"] = figure(
            [
                line("queued requests", x, values(found), 0),
                {
                    "type": "bar",
                    "name": "backlog with no instance",
                    "x": x,
                    "y": values(without),
                    "marker": {"color": "#fde2c2"},
                },
            ],
            yaxis={"title": {"text": "requests"}},
        )

    attempt("latency", latency)
    attempt("errors", errors)
    if endpoint.kind == Endpoint.Kind.SERVERLESS:
        attempt("cold_starts", serverless)
        attempt("instances", scaling)
    else:
        attempt("instances", scaling)
    if endpoint.kind == Endpoint.Kind.ASYNC:
        attempt("backlog", backlog)
    return result


def initial_count(endpoint: Endpoint, variant: str) -> int | None:
    for spec in endpoint.spec.get("variants", []):
        if spec.get("name") == variant and spec.get("instance_count") is not None:
            return int(spec["instance_count"])
    return None


def level_at(counts: dict, moment: datetime, before: bool) -> int | None:
    """The instance count in the last bucket wholly before a moment (or the first one from it
    on), from the count series."""
    if not counts:
        return None
    ordered = sorted(counts.items())
    minute = moment.replace(second=0, microsecond=0)
    if before:
        earlier = [value for when, value in ordered if when < minute]
        return int(earlier[-1]) if earlier else None
    later = [value for when, value in ordered if when >= minute]
    return int(later[0]) if later else None


DESIRED = re.compile(r"desired instance count to (\d+)")


def desired_count(description: str) -> int | None:
    """The count an activity set, from Application Auto Scaling's standard Description
    ("Setting desired instance count to 2."); None for any other wording."""
    found = DESIRED.search(description or "")
    return int(found.group(1)) if found else None
