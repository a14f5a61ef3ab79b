"""An endpoint's timeline: a status that passed straight through a transition is one line, and a
line from another day says its date."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from endpoints.models import Endpoint, Event
from endpoints.tasks import record_status
from endpoints.timeline import lines
from portal.templatetags.when import clock
from tests.factories import EnvironmentFactory

START = datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC)


def events(*rows: tuple[float, str, str]) -> list[Event]:
    """Events, newest first as the endpoint page reads them, from (seconds after START, kind,
    message) rows."""
    made = [
        Event(at=START + timedelta(seconds=offset), kind=kind, message=message)
        for offset, kind, message in rows
    ]
    return sorted(made, key=lambda event: event.at, reverse=True)


def shown(folded: list) -> list[tuple[str, str, float | None]]:
    return [(line.kind, line.message, line.seconds) for line in folded]


def test_a_restart_that_went_straight_back_to_in_service_is_one_line_with_its_duration() -> None:
    folded = lines(
        events(
            (0, "step", "Create finished."),
            (100, "status", "Status: Creating."),
            (104, "status", "Status: InService."),
            (200, "status", "Status: Creating."),
            (203.5, "status", "Status: InService."),
        )
    )

    assert shown(folded) == [
        ("status", "Status: Creating → InService.", 3.5),
        ("status", "Status: Creating → InService.", 4.0),
        ("step", "Create finished.", None),
    ]
    assert folded[0].at == START + timedelta(seconds=203.5)  # when it settled


def test_a_transition_that_failed_folds_into_an_error_line_with_the_reason() -> None:
    folded = lines(
        events(
            (0, "status", "Status: Updating."),
            (30, "error", "Status: Failed. The image could not be pulled."),
        )
    )

    assert shown(folded) == [
        ("error", "Status: Updating → Failed. The image could not be pulled.", 30.0)
    ]


@pytest.mark.parametrize(
    "rows",
    [
        # a deployment's step between the two: both stay, in their places
        [
            (0, "status", "Status: Creating."),
            (2, "step", "Create or update endpoint: done."),
            (5, "status", "Status: InService."),
        ],
        # from a settled status: nothing passed through a transition
        [(0, "status", "Status: InService."), (9, "status", "Status: OutOfService.")],
        # a delete ends in a line that is not a status
        [
            (0, "status", "Status: Deleting."),
            (3, "status", "Deleted; its configurations and models are cleaned up."),
        ],
        # a transitional line that carries more than its status
        [(0, "status", "Status: Creating. Retrying."), (4, "status", "Status: InService.")],
        # info lines are never folded
        [(0, "status", "Status: Creating."), (4, "info", "Status: InService.")],
    ],
)
def test_lines_that_did_not_pass_straight_through_a_transition_stay_as_they_are(rows) -> None:
    given = events(*rows)

    assert shown(lines(given)) == [(e.kind, e.message, e.seconds) for e in given]


def test_times_say_their_date_unless_they_are_today(settings, monkeypatch) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    monkeypatch.setattr(timezone, "localdate", lambda *args: date(2026, 11, 29))

    assert clock(datetime(2026, 11, 29, 8, 5, 9, tzinfo=UTC)) == "09:05:09"
    # 23:30 in UTC is already the next day in Berlin
    assert clock(datetime(2026, 11, 29, 23, 30, tzinfo=UTC)) == "Nov 30, 00:30:00"
    assert clock(datetime(2026, 11, 27, 22, 0, 1, tzinfo=UTC)) == "Nov 27, 23:00:01"
    assert clock(datetime(2025, 12, 31, 10, 0, tzinfo=UTC)) == "Dec 31 2025, 11:00:00"
    assert clock(None) == ""


def churn(status: str) -> Endpoint:
    return Endpoint.objects.create(environment=EnvironmentFactory(), name="churn", status=status)


@pytest.mark.django_db
def test_the_endpoint_page_shows_the_folded_timeline_and_how_many_events_it_left_out(
    client_for,
) -> None:
    endpoint = churn("InService")
    long_ago = timezone.now() - timedelta(days=400)
    Event.objects.bulk_create(
        Event(endpoint=endpoint, at=long_ago + timedelta(minutes=n), message=f"Old line {n}.")
        for n in range(103)
    )
    now = timezone.now()
    for seconds_ago, status in ((6, "Creating"), (1, "InService")):
        at = now - timedelta(seconds=seconds_ago)
        endpoint.events.create(at=at, kind="status", message=f"Status: {status}.")

    page = client_for("viewer").get(reverse("endpoints:detail", args=[endpoint.pk]))
    html = page.content.decode()

    assert "Status: Creating → InService." in html
    assert "5.0 s" in html
    assert "Status: Creating.<" not in html
    assert html.count('class="event event-') == 99  # 100 events, two of them one line
    assert "The latest 100 of 105 events." in html
    assert clock(long_ago + timedelta(minutes=102)) in html  # dated: not today
    assert "Old line 5." in html and "Old line 4." not in html


@pytest.mark.django_db
def test_a_status_change_the_poller_sees_makes_the_endpoint_updated_and_a_quiet_poll_does_not(
    client_for,
) -> None:
    endpoint = churn("Creating")
    hours_ago = timezone.now() - timedelta(hours=3)
    Endpoint.objects.filter(pk=endpoint.pk).update(updated_at=hours_ago)

    def poll(status: str) -> datetime:
        listed = {"churn": SimpleNamespace(status=status)}
        record_status(
            Endpoint.objects.get(pk=endpoint.pk),
            SimpleNamespace(described={}, listed=listed, gone=set()),
            "churn",
        )
        return Endpoint.objects.get(pk=endpoint.pk).updated_at

    assert poll("Creating") == hours_ago  # nothing changed
    changed = poll("InService")
    assert changed > hours_ago + timedelta(hours=2, minutes=59)
    assert "just now" in client_for("viewer").get(reverse("endpoints:list")).content.decode()
