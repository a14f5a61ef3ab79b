"""Insights pages: everyone reads charts, records and load-test results; Engineers and above
start and cancel load tests."""

from datetime import timedelta

from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from accounts.roles import Role, role_required
from audit import audit
from endpoints.models import Endpoint
from environments.backends.base import ProviderError
from insights import charts, conf, cost, loadtest, records
from insights.forms import RECORDED_PAYLOADS, LoadTestForm, RecordFilterForm
from insights.models import CapturedRecord, CaptureFile, CaptureSource, LoadTestRun, MinuteRollup
from insights.tasks import run_load_test

RANGE_CHOICES = [(key, label) for key, (label, _, _) in charts.RANGES.items()] + [
    ("custom", "Custom")
]


def chosen_window(request: HttpRequest) -> tuple[charts.Window, str]:
    """The window the range selector asks for, or the last 24 hours and why not."""
    try:
        span = charts.window(
            request.GET.get("range", "24h"),
            request.GET.get("start", ""),
            request.GET.get("end", ""),
        )
        return span, ""
    except charts.WindowError as error:
        return charts.window("24h"), str(error)


def range_context(request: HttpRequest, span: charts.Window, error: str) -> dict:
    return {
        "span": span,
        "range_error": error,
        "range_choices": RANGE_CHOICES,
        "range_key": request.GET.get("range", "24h") if not error else "24h",
        "range_start": request.GET.get("start", ""),
        "range_end": request.GET.get("end", ""),
        "range_query": request.GET.urlencode(),
    }


@require_safe
@role_required(Role.VIEWER)
def insights(request: HttpRequest) -> HttpResponse:
    """Every endpoint with its capture state and traffic of the last 24 hours."""
    wanted = request.GET.get("endpoint", "")
    if wanted.isdecimal() and len(wanted) <= 18:  # isdigit() passes "²", which int() refuses
        endpoint = get_object_or_404(Endpoint, pk=wanted)
        return redirect("insights:endpoint", endpoint.pk)
    endpoints = list(Endpoint.objects.live().select_related("environment"))
    since = timezone.now() - timedelta(hours=24)
    captured = dict(
        MinuteRollup.objects.filter(minute__gte=since)
        .values("endpoint")
        .annotate(total=Sum("count"))
        .values_list("endpoint", "total")
    )
    sources = {source.endpoint_id: source for source in CaptureSource.objects.all()}
    files = {
        row["endpoint"]: row
        for row in CaptureFile.objects.values("endpoint").annotate(
            files=Count("id"),
            torn=Sum("torn_lines"),
            waiting=Count("id", filter=Q(pending_bytes__gt=0)),
        )
    }
    rows = [
        {
            "endpoint": endpoint,
            "capture": endpoint.spec.get("capture") or {},
            "captured": captured.get(endpoint.pk, 0),
            "source": sources.get(endpoint.pk),
            "files": files.get(endpoint.pk, {}),
        }
        for endpoint in endpoints
    ]
    return render(request, "insights/insights.html", {"rows": rows})


@require_safe
@role_required(Role.VIEWER)
def endpoint_insights(request: HttpRequest, pk: int) -> HttpResponse:
    """Captured-traffic charts now (rollups only); provider metrics and cost load after."""
    endpoint = get_object_or_404(Endpoint.objects.select_related("environment"), pk=pk)
    span, error = chosen_window(request)
    context = range_context(request, span, error)
    context.update(
        {
            "endpoint": endpoint,
            "traffic": charts.traffic(endpoint, span),
            "capture": endpoint.spec.get("capture") or {},
            "source": CaptureSource.objects.filter(endpoint=endpoint).first(),
            "runs": endpoint.load_tests.all()[:5],
            "form": LoadTestForm(),
            "max_requests": conf.LOADTEST_MAX_REQUESTS,
        }
    )
    return render(request, "insights/endpoint.html", context)


@require_safe
@role_required(Role.VIEWER)
def endpoint_metrics(request: HttpRequest, pk: int) -> HttpResponse:
    """The provider's charts: latency, errors, scaling, cold starts, backlog (a fragment)."""
    endpoint = get_object_or_404(Endpoint.objects.select_related("environment"), pk=pk)
    span, error = chosen_window(request)
    metrics = charts.provider(endpoint, span)
    context = range_context(request, span, error)
    if endpoint.environment.is_local:
        note = "CurrentInstanceCount, as the local runtime records it."
    else:
        note = (
            "Invocations ÷ InvocationsPerInstance in each minute with traffic: CloudWatch has no "
            "instance-count metric."
        )
    context.update({"endpoint": endpoint, "metrics": metrics, "instances_note": note})
    return render(request, "insights/_metrics.html", context)


@require_safe
@role_required(Role.VIEWER)
def endpoint_cost(request: HttpRequest, pk: int) -> HttpResponse:
    """Monthly cost of the observed traffic, as configured and as the other kinds (a fragment)."""
    endpoint = get_object_or_404(Endpoint.objects.select_related("environment"), pk=pk)
    span, error = chosen_window(request)
    duration = None
    latency_error = ""
    try:
        points = [
            point.value
            for variant in charts.variant_names(endpoint)
            for point in endpoint.environment.backend.metric_series(
                endpoint.name, variant, "ModelLatency", span.start, span.end, span.step, "Average"
            )
        ]
        if points:
            duration = sum(points) / len(points) / 1e6  # microseconds
    except ProviderError as failure:
        latency_error = failure.message
    context = range_context(request, span, error)
    context.update(
        {
            "endpoint": endpoint,
            "estimate": cost.estimate(endpoint, span, duration),
            "latency_error": latency_error,
        }
    )
    return render(request, "insights/_cost.html", context)


@require_safe
@role_required(Role.VIEWER)
def record_list(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint.objects.select_related("environment"), pk=pk)
    span, error = chosen_window(request)
    form = RecordFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    per_page = conf.RECORDS_PER_PAGE
    rows = []
    # An invalid filter lists nothing: records listed beside its error would look filtered.
    if not form.errors:
        found = records.matching(endpoint, span, filters)
        # One more than a page tells whether there is a next one, without counting them all.
        rows = list(found[(page - 1) * per_page : page * per_page + 1])
    query = request.GET.copy()
    query.pop("page", None)
    context = range_context(request, span, error)
    context.update(
        {
            "endpoint": endpoint,
            "form": form,
            "records": rows[:per_page],
            "page": page,
            "has_next": len(rows) > per_page,
            "query": query.urlencode(),
            "variants": charts.variant_names(endpoint),
            "max_download": f"{conf.DOWNLOAD_MAX_RECORDS:,}",
        }
    )
    return render(request, "insights/records.html", context)


@require_safe
@role_required(Role.VIEWER)
def record_detail(request: HttpRequest, pk: int, record_pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    record = get_object_or_404(CapturedRecord, pk=record_pk, endpoint=endpoint)
    source = CaptureFile.objects.filter(pk=record.file_id).values_list("uri", flat=True).first()
    halves = []
    for direction, label in (("input", "Request"), ("output", "Response")):
        if direction == "output" and not record.has_output:
            continue
        data = getattr(record, f"{direction}_data")
        decoded = getattr(record, f"{direction}_decoded")
        content_type = getattr(record, f"{direction}_content_type")
        text, shown = records.pretty(data, content_type) if decoded else (data, "base64")
        halves.append(
            {
                "label": label,
                "content_type": content_type,
                "encoding": getattr(record, f"{direction}_encoding"),
                "bytes": getattr(record, f"{direction}_bytes"),
                "text": text,
                "shown": shown,
            }
        )
    context = {"endpoint": endpoint, "record": record, "halves": halves, "source": source}
    return render(request, "insights/record_detail.html", context)


@require_safe
@role_required(Role.VIEWER)
def download_records(request: HttpRequest, pk: int) -> HttpResponse:
    """The filtered records as SageMaker JSON Lines or as CSV, streamed."""
    endpoint = get_object_or_404(Endpoint, pk=pk)
    span, range_error = chosen_window(request)
    form = RecordFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    # A file carries no warning: a bad range or filter refuses the download rather than
    # export the last day or every record.
    problems = ([range_error] if range_error else []) + form.problems()
    if problems:
        message = " ".join(problems) + " Fix the filter on the records page and download again."
        return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
    found = records.matching(endpoint, span, filters)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    if request.GET.get("format") == "csv":
        response = StreamingHttpResponse(records.csv_lines(found), content_type="text/csv")
        name = f"{endpoint.name}-capture-{stamp}.csv"
    else:
        response = StreamingHttpResponse(
            records.jsonl_lines(found), content_type="application/x-ndjson"
        )
        name = f"{endpoint.name}-capture-{stamp}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_POST
@role_required(Role.ENGINEER)
def start_load_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint.objects.live(), pk=pk)
    form = LoadTestForm(request.POST)
    payloads: list[str] = []
    content_type = ""
    if form.is_valid():
        if form.cleaned_data["source"] == "pasted":
            payloads, content_type = form.pasted_payloads(), form.cleaned_data["content_type"]
        else:
            recorded = list(
                CapturedRecord.objects.filter(endpoint=endpoint, input_decoded=True)
                .exclude(input_encoding="")
                .order_by("-time")
                .values_list("input_data", "input_content_type")[:RECORDED_PAYLOADS]
            )
            if not recorded:
                form.add_error(
                    "source",
                    "This endpoint has no captured requests to replay yet: paste payloads "
                    "instead, or send some traffic with data capture on.",
                )
            payloads = [data for data, _ in recorded]
            content_type = recorded[0][1] if recorded else ""
    if not form.is_valid():
        span, error = chosen_window(request)
        context = range_context(request, span, error)
        context.update(
            {
                "endpoint": endpoint,
                "traffic": charts.traffic(endpoint, span),
                "capture": endpoint.spec.get("capture") or {},
                "source": CaptureSource.objects.filter(endpoint=endpoint).first(),
                "runs": endpoint.load_tests.all()[:5],
                "form": form,
                "max_requests": conf.LOADTEST_MAX_REQUESTS,
            }
        )
        return render(request, "insights/endpoint.html", context)
    with transaction.atomic():
        run = LoadTestRun.objects.create(
            endpoint=endpoint,
            payloads=payloads,
            content_type=content_type,
            target_model=form.cleaned_data["target_model"],
            requests=form.cleaned_data["requests"],
            concurrency=form.cleaned_data["concurrency"],
            created_by=request.user,
        )
        run_load_test.delay_on_commit(run.pk)
    return redirect("insights:load_test", run.pk)


@require_safe
@role_required(Role.VIEWER)
def load_test_detail(request: HttpRequest, run_pk: int) -> HttpResponse:
    run = get_object_or_404(LoadTestRun.objects.select_related("endpoint__environment"), pk=run_pk)
    if loadtest.stalled(run):
        run.refresh_from_db()
    instances = None
    instances_error = ""
    if not run.is_finished:
        try:
            state = run.endpoint.environment.backend.describe_endpoint(run.endpoint.name)
            if state is not None:
                instances = [
                    (v.name, v.current_instances, v.desired_instances) for v in state.variants
                ]
        except ProviderError as failure:
            instances_error = failure.message
    template = "insights/load_test.html"
    if request.htmx and not request.htmx.boosted:
        template += "#progress"
    context = {
        "run": run,
        "endpoint": run.endpoint,
        "summary": run.summary or {},
        "figure": load_test_figure(run),
        "instances": instances,
        "instances_error": instances_error,
        "charts_url": reverse("insights:endpoint", args=[run.endpoint.pk]) + "?range=1h",
    }
    return render(request, template, context)


def load_test_figure(run: LoadTestRun) -> dict:
    points = (run.summary or {}).get("series", [])
    seconds = [point[0] for point in points]
    return charts.figure(
        [
            {
                "type": "bar",
                "name": "answered",
                "x": seconds,
                "y": [point[1] for point in points],
                "marker": {"color": "#12805c"},
            },
            {
                "type": "bar",
                "name": "errors",
                "x": seconds,
                "y": [point[2] for point in points],
                "marker": {"color": "#c4302b"},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "mean latency, ms",
                "x": seconds,
                "y": [point[3] for point in points],
                "yaxis": "y2",
                "line": {"color": "#1f4fd1", "width": 2},
            },
        ],
        barmode="stack",
        xaxis={"type": "linear", "title": {"text": "seconds since start"}},
        yaxis={"title": {"text": "requests per second"}},
        yaxis2={"title": {"text": "ms"}, "overlaying": "y", "side": "right", "rangemode": "tozero"},
        margin={"l": 56, "r": 56, "t": 8, "b": 40},
    )


@require_POST
@role_required(Role.ENGINEER)
def cancel_load_test(request: HttpRequest, run_pk: int) -> HttpResponse:
    run = get_object_or_404(LoadTestRun, pk=run_pk)
    if not run.is_finished:
        with transaction.atomic():
            LoadTestRun.objects.filter(pk=run.pk).update(cancel_requested=True)
            # Not started yet: nothing will pick it up, so it ends here.
            LoadTestRun.objects.filter(pk=run.pk, status=LoadTestRun.Status.QUEUED).update(
                status=LoadTestRun.Status.CANCELLED, finished_at=timezone.now()
            )
            audit.record(run, "update", {"cancel_requested": False}, {"cancel_requested": True})
        messages.info(request, "Cancelling: requests already in flight finish first.")
    return redirect("insights:load_test", run.pk)
