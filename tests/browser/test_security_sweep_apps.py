"""The security sweep (S3, S4) over the newer apps: model cards, the playground and insights.

The same polyglot as tests/browser/test_security_sweep.py goes into every free-text field a
person writes on a model card, into every kind of answer a model sends back to the playground,
and into captured traffic and load-test errors; every page that shows it, charts included
(plotly reads its own markup in labels), must stay inert and show it as text.
"""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from endpoints.models import Endpoint
from insights.models import LoadTestRun, MinuteRollup
from modelcards import schema, workflow
from modelcards.models import ModelCard
from modelcards.sections import SECTIONS, set_path
from playground.models import Invocation, PinnedExample
from tests.browser.test_security_sweep import PAYLOAD, SHORT_PAYLOAD, Watch, submit
from tests.conftest import sign_in
from tests.factories import EnvironmentFactory
from tests.insights.factories import captured_record

pytestmark = [
    pytest.mark.browser,
    pytest.mark.security,
    pytest.mark.django_db(transaction=True),
]


def field_value(kind: str, path: str, max_length: int | None, choices: tuple) -> object:
    """The payload in the shape a card field of this kind keeps."""
    text = PAYLOAD if (max_length or 1024) >= len(PAYLOAD) else SHORT_PAYLOAD
    if kind == "number":
        return 1
    if kind == "choice":
        return choices[0]
    if kind == "list":
        return [text]
    if kind == "metrics":
        return [{"name": SHORT_PAYLOAD, "value": 0.5, "notes": PAYLOAD}]
    if kind == "pairs":
        if path.endswith("custom_details"):
            return {SHORT_PAYLOAD: PAYLOAD}
        return [{"name": SHORT_PAYLOAD, "value": PAYLOAD}]
    return text


def card_content() -> dict:
    """Every free-text field of every section (evaluations included) carrying the payload."""
    content: dict = {}
    for section in SECTIONS:
        for item in section.fields:
            value = field_value(item.kind, item.path, item.max_length, item.choices)
            set_path(content, item.path, value)
    content["evaluation_details"] = [
        {
            "name": SHORT_PAYLOAD,
            "evaluation_observation": PAYLOAD,
            "evaluation_job_arn": PAYLOAD,
            "datasets": [PAYLOAD],
            "metric_groups": [
                {
                    "name": SHORT_PAYLOAD,
                    "metric_data": [
                        # Bar chart labels are metric names.
                        {"name": SHORT_PAYLOAD, "type": "number", "value": 0.9, "notes": PAYLOAD},
                        {"name": PAYLOAD, "type": "number", "value": 0.7},
                        {"name": PAYLOAD + " (text)", "type": "string", "value": PAYLOAD},
                        {
                            "name": SHORT_PAYLOAD + " roc",
                            "type": "linear_graph",
                            "value": [[0, 0], [0.5, 0.8], [1, 1]],
                            "x_axis_name": SHORT_PAYLOAD,
                            "y_axis_name": SHORT_PAYLOAD,
                        },
                        {
                            "name": SHORT_PAYLOAD + " bars",
                            "type": "bar_chart",
                            "value": [3, 4],
                            "x_axis_name": [SHORT_PAYLOAD, "plain"],
                        },
                        {
                            "name": SHORT_PAYLOAD + " matrix",
                            "type": "matrix",
                            "value": [[5, 1], [2, 6]],
                            "x_axis_name": [SHORT_PAYLOAD, "plain"],
                            "y_axis_name": ["plain", SHORT_PAYLOAD],
                        },
                    ],
                }
            ],
        }
    ]
    return content


def test_model_cards_show_a_polyglot_in_every_field_as_inert_text(page, user_for) -> None:
    watch = Watch(page)
    engineer = user_for("engineer")
    sign_in(page, engineer.username)
    page.wait_for_load_state("networkidle")

    # The create form: the card name refuses the payload (and echoes it escaped), the model
    # name keeps it.
    page.goto(reverse("modelcards:create"))
    page.fill("#id_name", SHORT_PAYLOAD)
    page.fill("#id_model_name", PAYLOAD)
    submit(page, "main form button[type=submit]")
    watch.check("the card form with errors")
    assert page.locator("#id_name").input_value() == SHORT_PAYLOAD
    page.fill("#id_name", "sweep-card")
    submit(page, "main form button[type=submit]")
    card = ModelCard.objects.get(name="sweep-card")
    assert card.latest.content["model_overview"]["model_name"] == PAYLOAD
    watch.check("the first section's form after creating the card")

    # Version 2: every field at once (a card SageMaker would take); version 3: one section
    # through its form.
    assert schema.problems(card_content()) == []
    workflow.save_version(card, card_content(), engineer, note=PAYLOAD)
    page.goto(reverse("modelcards:edit", args=[card.pk, "additional_information"]))
    caveats = "#id_additional_information__caveats_and_recommendations"
    assert page.locator(caveats).input_value() == PAYLOAD
    page.fill(caveats, PAYLOAD + " and more")
    page.fill("#id_note", SHORT_PAYLOAD)
    submit(page, "main form button[type=submit]:text-is('Save')")
    watch.check("the section form after saving")
    assert card.latest.number == 3, page.inner_text("main")
    assert card.latest.note == SHORT_PAYLOAD
    for key in ("model_overview", "training_details", "evaluation_details"):
        watch.visit(reverse("modelcards:edit", args=[card.pk, key]))  # forms filled with it
    assert page.locator("input[value*='onerror=alert(4)']").count() >= 1  # an evaluation name
    workflow.transition(card, "PendingReview", engineer, comment=PAYLOAD)

    view = reverse("modelcards:view", args=[card.pk])
    pages = [
        (reverse("modelcards:list"), PAYLOAD),
        (reverse("modelcards:list") + "?" + urlencode({"q": "onerror=alert(1)"}), PAYLOAD),
        (reverse("modelcards:detail", args=[card.pk]), PAYLOAD),  # manage page, history
        (view, PAYLOAD),
        (view + "?version=2", PAYLOAD),
        (reverse("modelcards:diff", args=[card.pk]) + "?from=1&to=2", PAYLOAD),  # all added
        (reverse("modelcards:diff", args=[card.pk]) + "?from=2&to=3", PAYLOAD),  # word diff
    ]
    for url, shows in pages:
        watch.visit(url, shows)
    # The reader's page really drew its charts, labels from metric names included.
    page.goto(view)
    page.wait_for_load_state("networkidle")
    assert page.locator(".js-plotly-plot").count() >= 4
    assert SHORT_PAYLOAD in page.locator(".js-plotly-plot").first.text_content()
    watch.check(f"{view} with its charts")


def test_playground_shows_model_written_polyglots_as_inert_text(page, user_for) -> None:
    watch = Watch(page)
    engineer = user_for("engineer")
    endpoint = Endpoint.objects.create(
        environment=EnvironmentFactory(),
        name="sweep-playground",
        spec={"variants": []},
        status=Endpoint.Status.IN_SERVICE,
    )
    Endpoint.objects.create(  # an endpoint name read back from AWS, in every endpoint picker
        environment=endpoint.environment,
        name=SHORT_PAYLOAD,
        spec={"variants": []},
        status=Endpoint.Status.IN_SERVICE,
    )
    answers = {
        "text/html": PAYLOAD.encode(),
        "application/json": json.dumps({PAYLOAD: [PAYLOAD, {"label": PAYLOAD}]}).encode(),
        "text/csv": f'label,note\n"{PAYLOAD.replace(chr(34), chr(34) * 2)}",x\n'.encode(),
    }
    invocations = [
        Invocation.objects.create(
            user=engineer,
            endpoint=endpoint,
            endpoint_name=endpoint.name,
            content_type="application/json",
            request_inline=json.dumps({"prompt": PAYLOAD}).encode(),
            state=Invocation.State.DONE,
            status_code=200,
            response_inline=body,
            response_size=len(body),
            response_content_type=content_type,
            response_headers={"X-Sweep": PAYLOAD},
            variant="AllTraffic",
            custom_attributes=PAYLOAD,
            target_model=PAYLOAD,
            total_ms=12.0,
        )
        for content_type, body in answers.items()
    ]
    invocations.append(
        Invocation.objects.create(
            user=engineer,
            endpoint=endpoint,
            endpoint_name=SHORT_PAYLOAD,  # as it was called then
            content_type="text/csv",
            request_inline=PAYLOAD.encode(),
            state=Invocation.State.FAILED,
            status_code=424,
            error_code="ModelError",
            error_message=PAYLOAD,
            error_raw=PAYLOAD + " (raw)",
        )
    )
    pin = PinnedExample.objects.create(
        endpoint=endpoint,
        name=PAYLOAD[:100],
        content_type="application/json",
        accept=SHORT_PAYLOAD,
        custom_attributes=SHORT_PAYLOAD,
        body=PAYLOAD,
        pinned_by=engineer,
    )
    sign_in(page, engineer.username)
    page.wait_for_load_state("networkidle")

    pages = [(reverse("playground:history"), PAYLOAD)]
    for invocation in invocations:
        pages.append((reverse("playground:invocation", args=[invocation.pk]), PAYLOAD))
    pages += [
        (reverse("playground:compare"), None),
        (reverse("playground:compare") + f"?endpoint={endpoint.pk}", None),
        (reverse("playground:index") + f"?endpoint={endpoint.pk}", PAYLOAD[:100]),
        (reverse("playground:index") + f"?endpoint={endpoint.pk}&pin={pin.pk}", PAYLOAD[:100]),
    ]
    for url, shows in pages:
        watch.visit(url, shows)
    # The pinned example fills the form, kept as written and inert.
    assert page.locator("#id_body").input_value() == PAYLOAD
    assert page.locator("#id_custom_attributes").input_value() == SHORT_PAYLOAD
    # The result fragments (what the playground swaps in) on their own: no <main>, so the text
    # is the body's; no <head>, so the browser asks for /favicon.ico, which the portal does not
    # serve there. The JSON answer shows the payload as the JSON string it is (quotes escaped).
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    shown = [PAYLOAD, json.dumps(PAYLOAD, ensure_ascii=False), PAYLOAD, PAYLOAD]
    for invocation, text in zip(invocations, shown, strict=True):
        watch.visit(reverse("playground:result", args=[invocation.pk]))
        assert text in page.locator("body").inner_text()
    # The CSV answer is a table whose cell holds the payload.
    watch.visit(reverse("playground:invocation", args=[invocations[2].pk]))
    assert page.locator("td", has_text=PAYLOAD).count() >= 1


def test_insights_show_captured_polyglots_as_inert_text(page, user_for) -> None:
    watch = Watch(page)
    viewer = user_for("viewer")
    endpoint = Endpoint.objects.create(
        environment=EnvironmentFactory(),
        name="sweep-insights",
        status=Endpoint.Status.IN_SERVICE,
        spec={
            "variants": [{"name": "AllTraffic", "instance_type": "ml.m5.large"}],
            "capture": {"enabled": True, "sampling": 100, "destination": "s3://b/capture"},
        },
    )
    record = captured_record(
        endpoint,
        variant=SHORT_PAYLOAD,
        target_model=PAYLOAD,
        inference_id=SHORT_PAYLOAD,
        custom_attributes=PAYLOAD,
        input_content_type=PAYLOAD,
        input_data=PAYLOAD,
        output_data=json.dumps({"answer": PAYLOAD}),
    )
    captured_record(
        endpoint,
        input_content_type="text/csv",
        input_data=f"{PAYLOAD},1",
        output_content_type="text/html",
        output_data=PAYLOAD,
    )
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    for variant, target in ((SHORT_PAYLOAD, PAYLOAD), ("AllTraffic", "")):
        MinuteRollup.objects.create(
            endpoint=endpoint,
            variant=variant,
            target_model=target,
            minute=minute,
            count=3,
            request_bytes=30,
            response_bytes=60,
            content_types={"in": {PAYLOAD: 3}, "out": {SHORT_PAYLOAD: 3}},
        )
    run = LoadTestRun.objects.create(
        endpoint=endpoint,
        payloads=[PAYLOAD],
        content_type=SHORT_PAYLOAD,
        target_model=PAYLOAD,
        requests=10,
        concurrency=2,
        status=LoadTestRun.Status.FAILED,
        sent=10,
        error=PAYLOAD,
        summary={
            "ok": 7,
            "failed": 3,
            "errors": {PAYLOAD: 3},
            "latency_ms": {"p50": 1.0},
            "series": [[0, 4, 1, 2.0], [1, 3, 2, 3.0]],
        },
    )
    sign_in(page, viewer.username)
    page.wait_for_load_state("networkidle")

    records = reverse("insights:records", args=[endpoint.pk])
    pages = [
        (reverse("insights:index"), None),
        (records, PAYLOAD),
        (records + "?" + urlencode({"q": "onerror=alert(1)"}), PAYLOAD),
        (records + "?" + urlencode({"q": PAYLOAD}), PAYLOAD),
        (reverse("insights:record", args=[endpoint.pk, record.pk]), PAYLOAD),
        (reverse("insights:endpoint", args=[endpoint.pk]), PAYLOAD),
        (reverse("insights:load_test", args=[run.pk]), PAYLOAD),
    ]
    for url, shows in pages:
        watch.visit(url, shows)
    # The endpoint page's charts are drawn, with the variant name and content type as labels.
    page.goto(reverse("insights:endpoint", args=[endpoint.pk]))
    page.wait_for_load_state("networkidle")
    charts = page.locator(".js-plotly-plot")
    assert charts.count() >= 3
    drawn = " ".join(charts.all_text_contents())
    assert SHORT_PAYLOAD in drawn and PAYLOAD in drawn
    watch.check("the endpoint insights charts")
