"""Answers shown safely: JSON pretty-printed, CSV as a table, images from a same-origin URL,
anything else as escaped text. Nothing a model wrote is ever rendered as HTML (the templates
escape every value and wrap it in hx-disable); a long answer is cut at the preview size."""

import csv
import io
import json
from dataclasses import dataclass, field

from playground import conf

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_TABLE_ROWS = 500
MAX_TABLE_COLUMNS = 50


@dataclass(frozen=True)
class Rendered:
    kind: str  # json, table, image, text, binary, empty
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False
    size: int = 0


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_image(content_type: str) -> bool:
    return media_type(content_type) in IMAGE_TYPES


def render(data: bytes, content_type: str) -> Rendered:
    size = len(data)
    if not data:
        return Rendered("empty")
    kind = media_type(content_type)
    if kind in IMAGE_TYPES:
        return Rendered("image", size=size)
    truncated = size > conf.PREVIEW_BYTES
    preview = data[: conf.PREVIEW_BYTES]
    try:
        text = preview.decode()
    except UnicodeDecodeError as error:
        if not truncated or error.start < len(preview) - 3:  # not just a character cut in two
            return Rendered("binary", size=size)
        text = preview[: error.start].decode()
    if not truncated and (kind == "application/json" or kind.endswith("+json") or kind == ""):
        pretty = pretty_json(text)
        if pretty is not None:
            return Rendered("json", text=pretty, size=size)
    if kind == "text/csv":
        rows = table(text)
        if rows:
            return Rendered("table", rows=rows, truncated=truncated, size=size)
    return Rendered("text", text=text, truncated=truncated, size=size)


def pretty_json(text: str) -> str | None:
    """Indented JSON, or None if the text is not JSON (or too deep or large a number to read)."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def table(text: str) -> list[list[str]]:
    try:
        rows = [row[:MAX_TABLE_COLUMNS] for row in csv.reader(io.StringIO(text))]
    except csv.Error:
        return []
    return rows[:MAX_TABLE_ROWS]
