"""Export and import: SageMaker JSON and Hugging Face Markdown round trips, a real PDF, and
clear refusals of malformed files."""

import contextlib
import json
import re
import zlib

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from modelcards import exporters, schema
from modelcards.markdown_format import export_markdown, import_markdown
from modelcards.models import ModelCard

pytestmark = pytest.mark.django_db

HUGGING_FACE_README = """---
language: en
license: apache-2.0
library_name: transformers
pipeline_tag: text-classification
datasets:
- imdb
model-index:
- name: sentiment
  results:
  - task: {type: text-classification}
    dataset: {name: IMDB test, type: imdb}
    metrics:
    - {type: accuracy, value: 0.93, name: Accuracy}
---

# Sentiment model

<!-- Provide a quick summary of what the model is/does. -->

## Model Details

### Model Description

Classifies reviews as positive or negative.

## Uses

### Direct Use

Tagging product reviews.

### Out-of-Scope Use

Medical or legal text.

## Bias, Risks, and Limitations

Trained on English film reviews only.

### Recommendations

[More Information Needed]

## Training Details

### Training Data

The IMDB training split.
"""


def test_schema_file_is_a_valid_draft_07_schema() -> None:
    from jsonschema import Draft7Validator

    Draft7Validator.check_schema(json.loads(schema.SCHEMA_FILE.read_text()))


def test_json_export_then_import_gives_the_same_content(client_for, card, full_content) -> None:
    exported = client_for("viewer").get(reverse("modelcards:export", args=[card.pk, "json"]))

    imported = exporters.import_file("churn.json", exported.content)

    assert exported["Content-Type"] == "application/json"
    assert imported == full_content


def test_markdown_export_then_import_gives_the_same_content(client_for, card, full_content):
    exported = client_for("viewer").get(reverse("modelcards:export", args=[card.pk, "markdown"]))
    text = exported.content.decode()

    imported = exporters.import_file("README.md", exported.content)

    assert imported == full_content
    front = yaml.safe_load(text.split("---")[1])
    assert front["model_name"] == "Churn classifier"
    assert front["datasets"] == ["s3://demo/data/churn-2025.csv"]
    assert front["model-index"][0]["results"][0]["metrics"][0] == {
        "name": "AUC",
        "type": "AUC",
        "value": 0.91,
    }
    assert "## Bias, Risks, and Limitations\n\nChecked for age bias." in text
    assert "### Direct Use\n\nWeekly batch scoring by the retention team." in text


def test_markdown_text_that_looks_like_a_heading_still_round_trips(full_content) -> None:
    full_content["intended_uses"]["intended_uses"] = "Scores.\n\n### Recommendations\n\nNone."

    assert import_markdown(export_markdown(full_content)) == full_content


def test_hugging_face_readme_maps_onto_the_sagemaker_sections() -> None:
    content = exporters.import_file("README.md", HUGGING_FACE_README.encode())

    assert content["model_overview"]["model_name"] == "Sentiment model"
    assert content["model_overview"]["model_description"] == (
        "Classifies reviews as positive or negative."
    )
    assert content["model_overview"]["problem_type"] == "text-classification"
    assert content["intended_uses"]["intended_uses"] == "Tagging product reviews."
    assert content["additional_information"]["caveats_and_recommendations"] == (
        "Medical or legal text."
    )
    assert content["additional_information"]["ethical_considerations"] == (
        "Trained on English film reviews only."
    )
    assert content["additional_information"]["custom_details"]["license"] == "apache-2.0"
    assert content["evaluation_details"][0]["name"] == "IMDB test"
    metric = content["evaluation_details"][0]["metric_groups"][0]["metric_data"][0]
    assert metric == {"name": "Accuracy", "type": "number", "value": 0.93}
    assert content["training_details"]["training_observations"] == "The IMDB training split."


def pdf_text(data: bytes) -> str:
    """The text drawn in a PDF: its content streams, inflated."""
    text = data.decode("latin-1")
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL):
        with contextlib.suppress(zlib.error):
            text += zlib.decompress(stream).decode("latin-1")
    return text


def test_pdf_export_is_a_pdf_holding_the_title_and_sections(client_for, card) -> None:
    response = client_for("viewer").get(reverse("modelcards:export", args=[card.pk, "pdf"]))

    data = response.content
    text = pdf_text(data)
    assert response["Content-Type"] == "application/pdf"
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert "Churn classifier" in text
    for section in (
        "Model overview",
        "Intended uses",
        "Business details",
        "Training details",
        "Evaluation",
        "Additional information",
    ):
        assert section in text
    assert "Holdout 2026-Q1" in text


def test_pdf_replaces_characters_its_font_cannot_draw(card, writer, full_content) -> None:
    from modelcards import workflow

    full_content["model_overview"]["model_name"] = "Churn “v2” — 猫"
    version = workflow.save_version(card, full_content, writer)

    text = pdf_text(exporters.export_pdf(version))

    assert 'Churn "v2" - ?' in text


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("card.json", b'{"model_overview": {', "not valid JSON (Expecting"),
        ("card.json", b"[1, 2]", "JSON object"),
        ("card.json", b"[" * 100_000, "nested too deep"),
        ("card.json", b"\xff\xfe\x00", "not UTF-8"),
        ("README.md", b"---\nlicense: [mit\n---\n# x\n", "not valid YAML"),
        ("README.md", b"---\nlicense: mit\n# never closed\n", "front matter is not closed"),
        ("README.md", b"---\n- a list\n---\n# x\n", "must be a mapping"),
        ("README.md", b"just some words", "Found nothing of a model card"),
    ],
)
def test_malformed_files_are_refused_with_a_clear_reason(name, data, says) -> None:
    with pytest.raises(exporters.CardFileError, match=re.escape(says)):
        exporters.import_file(name, data)


def test_schema_problems_name_each_field() -> None:
    content = {
        "intended_uses": {"risk_rating": "Severe"},
        "model_overview": {"model_name": "x", "colour": "red"},
        "evaluation_details": [{"name": "e", "metric_groups": [{"name": "g"}]}],
    }

    with pytest.raises(exporters.CardFileError) as refused:
        exporters.import_file("card.json", json.dumps(content).encode())

    found = {problem.path: problem.message for problem in refused.value.problems}
    assert found["intended_uses.risk_rating"] == "Use one of High, Medium, Low, Unknown."
    assert found["model_overview"] == "SageMaker model cards have no field 'colour'."
    assert "'metric_data' is required here" in found["evaluation_details[0].metric_groups[0]"]


def test_a_describe_model_card_answer_imports_its_content(full_content) -> None:
    answer = {"ModelCardName": "churn", "Content": json.dumps(full_content)}

    assert exporters.import_file("described.json", json.dumps(answer).encode()) == full_content


def test_import_page_creates_a_draft_card(client_for) -> None:
    upload = SimpleUploadedFile("README.md", HUGGING_FACE_README.encode())

    response = client_for("engineer").post(reverse("modelcards:import"), {"file": upload})

    card = ModelCard.objects.get()
    assert response.status_code == 302
    assert card.name == "sentiment-model" and card.status == "Draft"
    assert card.latest.content["intended_uses"]["intended_uses"] == "Tagging product reviews."


def test_import_page_lists_each_schema_problem_and_creates_nothing(client_for) -> None:
    bad = {"intended_uses": {"risk_rating": "Severe"}}
    upload = SimpleUploadedFile("card.json", json.dumps(bad).encode())

    response = client_for("engineer").post(reverse("modelcards:import"), {"file": upload})

    page = response.content.decode()
    assert response.status_code == 200
    assert "does not match SageMaker" in page
    assert "intended_uses.risk_rating" in page and "Use one of High, Medium, Low, Unknown." in page
    assert not ModelCard.objects.exists()


def test_json_export_refuses_a_version_the_schema_rejects(client_for, card) -> None:
    from modelcards.models import CardVersion

    CardVersion.objects.create(card=card, number=2, content={"intended_uses": {"risk_rating": "?"}})

    response = client_for("viewer").get(reverse("modelcards:export", args=[card.pk, "json"]))

    assert response.status_code == 302
