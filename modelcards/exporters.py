"""A card version as a file: SageMaker JSON, a Hugging Face README.md, or a PDF; and back."""

import json
import re

from fpdf import FPDF

from modelcards import schema
from modelcards.markdown_format import MarkdownCardError, export_markdown, import_markdown
from modelcards.models import CardVersion
from modelcards.sections import SECTIONS, get_path, to_display

MAX_IMPORT_BYTES = 1_000_000


class CardFileError(ValueError):
    """The file cannot become a card. `problems` lists each fix, field by field."""

    def __init__(self, message: str, problems: list[schema.Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []


# -- SageMaker JSON -------------------------------------------------------------------------


def export_json(version: CardVersion) -> str:
    """The Content document CreateModelCard takes. Refuses a version the schema rejects."""
    found = schema.problems(version.content)
    if found:
        raise CardFileError("This version does not match SageMaker's model card schema.", found)
    return json.dumps(version.content, indent=2, ensure_ascii=False) + "\n"


def import_file(name: str, data: bytes) -> dict:
    """Content from an uploaded SageMaker JSON or Hugging Face README.md, checked against the
    schema. CardFileError says what is wrong."""
    if len(data) > MAX_IMPORT_BYTES:
        raise CardFileError(f"{name} is larger than 1 MB; a model card is far smaller.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CardFileError(f"{name} is not UTF-8 text.") from None
    if name.lower().endswith(".json") or text.lstrip().startswith("{"):
        content = parse_json(text)
    else:
        try:
            content = import_markdown(text)
        except MarkdownCardError as error:
            raise CardFileError(str(error)) from None
    found = schema.problems(content)
    if found:
        raise CardFileError("The card does not match SageMaker's model card schema.", found)
    return content


def parse_json(text: str) -> dict:
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise CardFileError(f"This is not valid JSON ({error.msg} at {where}).") from None
    except (ValueError, RecursionError):  # too many digits, or nested too deep
        raise CardFileError("This JSON is nested too deep or holds a number too long.") from None
    if not isinstance(content, dict):
        raise CardFileError("A SageMaker model card is a JSON object, {…}, at the top level.")
    if "Content" in content and "ModelCardName" in content:  # a DescribeModelCard response
        return parse_json(content["Content"]) if isinstance(content["Content"], str) else {}
    return content


# -- Hugging Face Markdown ------------------------------------------------------------------


def export_hugging_face(version: CardVersion) -> str:
    return export_markdown(version.content)


# -- PDF ------------------------------------------------------------------------------------

LATIN1_STANDINS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u2022": "-",
        "\u203a": ">",
        "\u2192": "->",
        "\u00a0": " ",
        "\u2212": "-",
    }
)


def latin1(text: object) -> str:
    """The core PDF fonts know Latin-1 only: common typography gets a look-alike, the rest ?."""
    return str(text).translate(LATIN1_STANDINS).encode("latin-1", "replace").decode("latin-1")


def plain_markdown(text: str) -> str:
    """Markdown as readable plain text: emphasis marks and link targets dropped."""
    text = re.sub(r"\[([^\]]*)\]\(([^)]*)\)", r"\1 (\2)", text)
    text = re.sub(r"(\*\*|__|`)", "", text)
    return re.sub(r"^#{1,6}\s*", "", text, flags=re.MULTILINE)


class CardPDF(FPDF):
    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 10, f"Page {self.page_no()}/{{nb}}", align="C")


def export_pdf(version: CardVersion) -> bytes:
    card = version.card
    pdf = CardPDF(format="A4")
    pdf.set_title(latin1(version.title))
    pdf.set_author("Endpoint Portal")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, latin1(version.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.set_text_color(90, 90, 90)
    status = card.get_status_display() if version.number == card.latest.number else "Superseded"
    if version.approved_at:
        status = f"Approved {version.approved_at:%Y-%m-%d}"
    meta = (
        f"Model card {card.name}, version {version.number} ({status}). "
        f"Risk rating: {version.risk_rating}."
    )
    pdf.multi_cell(0, 6, latin1(meta), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    for section in SECTIONS:
        rows = section_rows(version.content, section)
        if not rows:
            continue
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 14)
        pdf.set_draw_color(200, 205, 215)
        pdf.cell(0, 9, latin1(section.title), border="B", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
        for label, text in rows:
            pdf.set_font("Helvetica", "B", 10)
            pdf.multi_cell(0, 6, latin1(label), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", size=10)
            pdf.multi_cell(0, 5.5, latin1(text), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
    return bytes(pdf.output())


def section_rows(content: dict, section: object) -> list[tuple[str, str]]:
    """(label, text) for each filled field of a section, evaluation included."""
    if section.key == "evaluation_details":
        rows = []
        for evaluation in content.get("evaluation_details", []):
            lines = []
            if evaluation.get("evaluation_observation"):
                lines.append(plain_markdown(evaluation["evaluation_observation"]))
            if evaluation.get("datasets"):
                lines.append("Datasets: " + ", ".join(evaluation["datasets"]))
            for group in evaluation.get("metric_groups", []):
                for metric in group.get("metric_data", []):
                    value = metric.get("value")
                    if metric.get("type") in {"linear_graph", "bar_chart", "matrix"}:
                        value = f"{metric['type'].replace('_', ' ')} of {len(value)} points"
                    lines.append(f"{group['name']} - {metric['name']}: {value}")
            rows.append((evaluation.get("name", "Evaluation"), "\n".join(lines) or "-"))
        return rows
    rows = []
    for item in section.fields:
        value = get_path(content, item.path)
        if value in (None, "", [], {}):
            continue
        text = to_display(item, value)
        rows.append(
            (item.label, plain_markdown(str(text)) if item.kind == "markdown" else str(text))
        )
    return rows
