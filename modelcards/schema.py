"""The SageMaker model card content schema (draft-07, version 0.1.0) and checks against it."""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError as SchemaError

SCHEMA_FILE = Path(__file__).with_name("model_card_schema.json")
MAX_CONTENT_CHARS = 100_000  # CreateModelCard's Content limit
TYPE_WORDS = {
    "string": "text in quotes",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list, [...]",
    "object": "an object, {...}",
}


@dataclass(frozen=True)
class Problem:
    """One place in the document that breaks the schema, said so a person can fix it."""

    path: str  # like evaluation_details[0].metric_groups[1].name; "" for the whole document
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@cache
def validator() -> Draft7Validator:
    return Draft7Validator(json.loads(SCHEMA_FILE.read_text()))


def problems(content: object) -> list[Problem]:
    """Every way `content` breaks SageMaker's schema, in document order; [] when it is valid."""
    found = [
        Problem(dotted(error.absolute_path), plain(error))
        for error in sorted(validator().iter_errors(content), key=lambda e: list(map(str, e.path)))
        if error.validator not in {"allOf", "if"}
    ]
    if not found and len(json.dumps(content)) > MAX_CONTENT_CHARS:
        size = f"{MAX_CONTENT_CHARS:,}"
        found.append(Problem("", f"The card is longer than SageMaker's {size} characters."))
    return found


def dotted(path: object) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def plain(error: SchemaError) -> str:
    """jsonschema's message, reworded where it is cryptic."""
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"SageMaker model cards have no field {', '.join(map(repr, extra))}."
    if error.validator == "maxLength":
        return f"Shorten this to {error.validator_value} characters or fewer."
    if error.validator == "minLength":
        return "This cannot be empty."
    if error.validator == "maxItems":
        return f"Keep to {error.validator_value} entries or fewer."
    if error.validator == "enum":
        return f"Use one of {', '.join(map(str, error.validator_value))}."
    if error.validator == "type":  # jsonschema says "5 is not of type 'string'"
        kinds = (
            error.validator_value
            if isinstance(error.validator_value, list)
            else [error.validator_value]
        )
        wanted = " or ".join(TYPE_WORDS.get(kind, kind) for kind in kinds)
        return f"Use {wanted} here, not {json.dumps(error.instance)[:40]}."
    if error.validator == "required":
        return error.message.replace("is a required property", "is required here")
    return error.message
