"""An endpoint's timeline as people read it: a status that passed straight through a transition
reads as one line ("Status: Creating → InService.", with how long it took), not two."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from endpoints.models import TRANSITIONAL, Event

STATUS_LINE = re.compile(r"Status: (?P<status>[A-Za-z]+)\.(?P<rest>.*)", re.DOTALL)


@dataclass(frozen=True)
class Line:
    at: datetime
    kind: str
    message: str
    seconds: float | None = None


def lines(events: Iterable[Event]) -> list[Line]:
    """The events, newest first as given, with each change into a transitional status folded
    into the status that directly followed it. Anything between the two (a deployment's step,
    an error) keeps them apart: then both lines stay, in their places."""
    folded: list[Line] = []
    for event in reversed(list(events)):  # oldest first
        line = Line(event.at, event.kind, event.message, event.seconds)
        previous = folded[-1] if folded else None
        if previous is not None and (merged := _fold(previous, line)) is not None:
            folded[-1] = merged
        else:
            folded.append(line)
    folded.reverse()
    return folded


def _fold(before: Line, after: Line) -> Line | None:
    if before.kind != "status" or after.kind not in ("status", "error"):
        return None
    start, end = STATUS_LINE.fullmatch(before.message), STATUS_LINE.fullmatch(after.message)
    if start is None or end is None or start["rest"] or start["status"] not in TRANSITIONAL:
        return None
    if end["status"] == start["status"]:
        return None
    seconds = (after.at - before.at).total_seconds()
    message = f"Status: {start['status']} → {end['status']}.{end['rest']}"
    return Line(after.at, after.kind, message, seconds)
