"""What changed between two versions of a card, field by field, in words a reviewer reads.

Not a JSON diff: each field is named by its section and label, a short value shows before and
after, and long text shows its words struck out and added inline.
"""

import difflib
import json
import re
from dataclasses import dataclass

from modelcards.sections import EVALUATION_LABELS, FIELDS, SECTIONS, to_display

SECTION_TITLES = {section.key: section.title for section in SECTIONS}
SEPARATOR = " \u203a "  # a single right-pointing angle quote
LONG = 80  # characters beyond which a change is shown word by word


@dataclass(frozen=True)
class Change:
    label: str  # section, then field: "Intended uses > Risk rating", joined by SEPARATOR
    before: str
    after: str
    # For long text: (kind, words) runs where kind is "same", "removed" or "added".
    words: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        if not self.before:
            return "added"
        return "removed" if not self.after else "changed"


def flatten(content: dict) -> dict[str, tuple[str, str]]:
    """Every leaf of the document: path -> (label, text), in section order."""
    leaves: dict[str, tuple[str, str]] = {}
    for key in dict.fromkeys([*(section.key for section in SECTIONS), *sorted(content)]):
        if key in content:
            walk(content[key], key, leaves)
    return leaves


def walk(value: object, path: str, leaves: dict[str, tuple[str, str]]) -> None:
    item = FIELDS.get(path)
    if item is not None or not isinstance(value, dict | list) or is_scalar_list(value):
        leaves[path] = (label_for(path), as_text(value, item.kind if item else ""))
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            walk(inner, f"{path}.{key}", leaves)
        return
    for index, inner in enumerate(value):
        name = inner.get("name") if isinstance(inner, dict) else None
        walk(inner, f"{path}[{name or index + 1}]", leaves)


def is_scalar_list(value: object) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def as_text(value: object, kind: str) -> str:
    if kind in {"metrics", "pairs"}:
        return to_display(FIELDS_BY_KIND[kind], value)
    if isinstance(value, list) and is_scalar_list(value):
        return "\n".join(map(str, value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


FIELDS_BY_KIND = {
    "metrics": FIELDS["training_details.training_job_details.training_metrics"],
    "pairs": FIELDS["training_details.training_job_details.hyper_parameters"],
}


def label_for(path: str) -> str:
    """`evaluation_details[holdout].metric_groups[scores].metric_data[auc].value` as
    "Evaluation > holdout > Metrics > scores > auc > Value" (with SEPARATOR)."""
    if path in FIELDS:
        section = SECTION_TITLES[path.split(".")[0]]
        return f"{section}{SEPARATOR}{FIELDS[path].label}"
    parts = re.findall(r"[^.\[\]]+", path)
    words = [SECTION_TITLES.get(parts[0], humanize(parts[0]))]
    for part in parts[1:]:
        if part in {"metric_data"}:
            continue
        words.append(EVALUATION_LABELS.get(part) or humanize(part))
    return SEPARATOR.join(words)


def humanize(key: str) -> str:
    return key.replace("_", " ").capitalize() if re.fullmatch(r"[a-z_]+", key) else key


def compare(old: dict, new: dict) -> list[Change]:
    """The changes from `old` to `new`, in the order the card reads."""
    before, after = flatten(old), flatten(new)
    paths = list(after) + [path for path in before if path not in after]
    changes = []
    for path in paths:
        label, old_text = before.get(path, ("", ""))
        label, new_text = after.get(path, (label, ""))
        if old_text == new_text:
            continue
        words = ()
        if old_text and new_text and max(len(old_text), len(new_text)) > LONG:
            words = word_diff(old_text, new_text)
        changes.append(Change(label or label_for(path), old_text, new_text, words))
    return changes


def word_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    old_words, new_words = re.split(r"(\s+)", old), re.split(r"(\s+)", new)
    runs = []
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            runs.append(("same", "".join(old_words[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("removed", "".join(old_words[i1:i2])))
        if j2 > j1:
            runs.append(("added", "".join(new_words[j1:j2])))
    return tuple(runs)
