"""In a real browser: an Engineer writes a model card over two sittings and submits it for
review, a Deployer approves it, and a Viewer finds it in the list and reads the stakeholder
page with its plotly charts. A hostile card stays inert in the browser too.

Set SCREENSHOTS=<folder> to keep a screenshot of each page for a look by eye."""

import json
import os
from pathlib import Path

import pytest

from modelcards import workflow
from modelcards.models import ModelCard, Status
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LISTEN_FOR_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (event) => {
  var where = event.target && event.target.outerHTML ? event.target.outerHTML.slice(0, 160) : '';
  window.__csp.push(event.violatedDirective + ' ' + event.blockedURI + ' ' + where);
});
"""
METRICS = [
    {
        "name": "Scores",
        "metric_data": [
            {"name": "AUC", "type": "number", "value": 0.91},
            {"name": "Recall", "type": "number", "value": 0.82},
            {
                "name": "ROC",
                "type": "linear_graph",
                "value": [[0, 0], [0.1, 0.62], [0.3, 0.85], [1, 1]],
                "x_axis_name": "False positive rate",
                "y_axis_name": "True positive rate",
            },
            {
                "name": "Confusion matrix",
                "type": "matrix",
                "value": [[812, 41], [63, 284]],
                "x_axis_name": ["predicted stays", "predicted leaves"],
                "y_axis_name": ["stays", "leaves"],
            },
        ],
    }
]


def shot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_out(page) -> None:
    page.click(".usermenu button:text-is('Sign out')")
    page.wait_for_selector("#id_username")


def test_card_is_written_in_sittings_reviewed_approved_and_read_by_a_viewer(page, user_for):
    page.add_init_script(LISTEN_FOR_CSP)
    engineer, deployer, viewer = user_for("engineer"), user_for("deployer"), user_for("viewer")

    # First sitting: the Engineer starts the card and writes its overview.
    sign_in(page, engineer.username)
    page.click("nav.mainnav a:text-is('Model cards')")
    page.click("text=New model card")
    page.fill("#id_name", "churn")
    page.fill("#id_model_name", "Churn classifier")
    page.click("button:text-is('Create draft')")
    page.fill(
        "#id_model_overview__model_description",
        "Predicts which customers may **cancel** next month.",
    )
    page.fill("#id_model_overview__model_owner", "Retention team")
    page.fill("#id_model_overview__problem_type", "Binary Classification")
    page.fill("#id_note", "Overview")
    shot(page, "1-edit-overview")
    page.click("button:text-is('Save and continue')")
    assert "Saved as version 2." in page.locator(".messages").inner_text()
    sign_out(page)

    # Second sitting: the card is found again and finished.
    sign_in(page, engineer.username)
    page.goto("/model-cards/")
    page.click("a:text-is('churn')")
    page.click(".section-checklist a:text-is('Intended uses')")
    assert page.locator("#id_intended_uses__risk_rating").input_value() == "Unknown"
    page.fill("#id_intended_uses__intended_uses", "Weekly scoring for retention offers.")
    page.select_option("#id_intended_uses__risk_rating", "Medium")
    page.click("button:text-is('Save and continue')")
    page.fill("#id_business_details__business_problem", "Churn costs revenue.")
    page.click("button:text-is('Save and continue')")
    page.fill(
        "#id_training_details__training_job_details__training_datasets",
        "s3://demo/data/churn-2025.csv",
    )
    page.click("button:text-is('Save and continue')")
    page.fill("#id_evaluations-0-name", "Holdout 2026-Q1")
    page.fill("#id_evaluations-0-metric_groups", json.dumps(METRICS))
    page.click("button:text-is('Save and continue')")
    page.fill(
        "#id_additional_information__caveats_and_recommendations",
        "Never use it to price contracts.",
    )
    shot(page, "2-edit-additional")
    page.click("button:text-is('Save')")
    page.click("a:text-is('Done')")
    page.fill("#id_comment", "Ready for a look.")
    page.click("button:text-is('Submit for review')")
    assert "churn is now pending review." in page.locator(".messages").inner_text()
    assert not page.locator("button:text-is('Approve')").count()  # Engineers do not approve
    sign_out(page)

    # The Deployer reviews the changes and approves.
    sign_in(page, deployer.username)
    page.goto("/model-cards/")
    page.click("a:text-is('churn')")
    page.click("button:text-is('Show changes')")
    assert "Caveats and recommendations" in page.locator(".diff-list").inner_text()
    shot(page, "3-diff")
    page.go_back()
    page.fill("#id_comment", "Approved for the retention launch.")
    page.click("button:text-is('Approve')")
    assert "churn is now approved." in page.locator(".messages").inner_text()
    shot(page, "4-detail-approved")
    sign_out(page)

    # The Viewer finds it and reads it.
    sign_in(page, viewer.username)
    page.goto("/model-cards/")
    page.select_option("#card-status", "Approved")
    page.click("button:text-is('Filter')")
    shot(page, "5-list")
    page.click("a.card-title:text-is('Churn classifier')")
    page.wait_for_selector("#metric-chart-1 .main-svg")
    page.wait_for_selector("#metric-chart-3 .main-svg")
    shot(page, "6-stakeholder")
    text = page.locator("article.model-card").inner_text()

    card = ModelCard.objects.get(name="churn")
    assert card.status == Status.APPROVED
    assert card.versions.count() == 7
    assert card.transitions.first().comment == "Approved for the retention launch."
    assert "Approved" in page.locator(".model-card-head .status").inner_text()
    for heading in (
        "What the model does",
        "What it must not be used for",
        "The data it was trained on",
        "How well it does",
    ):
        assert heading in text
    assert "Never use it to price contracts." in text
    assert page.locator(".prose strong:text-is('cancel')").count() == 1
    assert page.locator("#metric-chart-2 .scatterlayer .trace").count() == 1
    assert page.locator("#metric-chart-3 .hm").count() == 1  # the confusion matrix heatmap
    assert page.evaluate("window.__csp") == []


def test_a_hostile_card_does_nothing_in_the_browser(page, user_for) -> None:
    writer = user_for("engineer")
    hostile = (
        "<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)> "
        '<b onclick="alert(4)" hx-get="/accounts/logout/" hx-trigger="load">b</b>'
    )
    content = {
        "model_overview": {
            "model_name": "<img src=x onerror=alert(5)>",
            "model_description": hostile,
        },
        "additional_information": {"caveats_and_recommendations": hostile},
        "evaluation_details": [
            {
                "name": "</script><script>alert(6)</script>",
                "metric_groups": [
                    {
                        "name": "<b onmouseover=alert(7)>",
                        "metric_data": [
                            {"name": "<img src=x onerror=alert(8)>", "type": "number", "value": 1}
                        ],
                    }
                ],
            }
        ],
    }
    card = workflow.create_card("hostile", content, writer)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script(LISTEN_FOR_CSP)
    sign_in(page, user_for("viewer").username)

    page.goto(f"/model-cards/{card.pk}/view/")
    page.wait_for_selector("#metric-chart-1 .main-svg")
    page.hover("#metric-chart-1 .nsewdrag")  # the hover label shows the hostile metric name
    page.wait_for_selector("#metric-chart-1 .hoverlayer .hovertext")

    assert dialogs == []
    assert page.locator("article img, article script, [onerror], [onclick], b[hx-get]").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert "<img src=x onerror=alert(5)>" in page.locator("h1").inner_text()
    assert page.evaluate("window.__csp") == []
    assert "/accounts/login/" not in page.url  # the hx-get logout never fired
