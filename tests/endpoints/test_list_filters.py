"""The endpoint list narrowed by name, state, kind and environment, and the home page's figures,
which link to it: each figure counts exactly the rows its link shows."""

import re

import pytest
from django.utils import timezone

from endpoints.models import Deployment, Endpoint, State
from tests.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet() -> dict[str, Endpoint]:
    local, aws = EnvironmentFactory(name="local"), EnvironmentFactory(name="prod")
    rows = {
        "churn-a": (local, "InService", Endpoint.Kind.REAL_TIME),
        "churn-b": (aws, "InService", Endpoint.Kind.SERVERLESS),
        "being-updated": (aws, "InService", Endpoint.Kind.REAL_TIME),
        "new-one": (local, "Creating", Endpoint.Kind.ASYNC),
        "waiting": (local, "Pending", Endpoint.Kind.REAL_TIME),
        "broken": (aws, "Failed", Endpoint.Kind.REAL_TIME),
        "rollback-failed": (local, "UpdateRollbackFailed", Endpoint.Kind.REAL_TIME),
        "gone": (local, "Failed", Endpoint.Kind.REAL_TIME),
    }
    made = {
        name: Endpoint.objects.create(environment=environment, name=name, status=status, kind=kind)
        for name, (environment, status, kind) in rows.items()
    }
    Deployment.objects.create(endpoint=made["being-updated"], action="update", generation=2)
    # A failed endpoint whose retry is running is still a failure to look at.
    Deployment.objects.create(endpoint=made["broken"], action="update", generation=2)
    finished = Deployment.objects.create(endpoint=made["churn-a"], action="create", generation=1)
    Deployment.objects.filter(pk=finished.pk).update(finished_at=timezone.now())
    Endpoint.objects.filter(pk=made["gone"].pk).update(deleted_at=timezone.now())
    return made


EVERY = {"churn-a", "churn-b", "being-updated", "new-one", "waiting", "broken", "rollback-failed"}


def names(html: str) -> set[str]:
    table = html.split('id="endpoint-rows"', 1)[-1] if 'id="endpoint-rows"' in html else ""
    return set(re.findall(r'<a href="/endpoints/\d+/">([^<]+)</a>', table))


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (State.SERVING, {"churn-a", "churn-b"}),
        (State.IN_PROGRESS, {"being-updated", "new-one", "waiting"}),
        (State.ATTENTION, {"broken", "rollback-failed"}),
    ],
)
def test_each_live_endpoint_is_in_exactly_the_state_a_person_would_say(
    fleet, state, expected
) -> None:
    found = Endpoint.objects.live().in_state(state)

    assert {endpoint.name for endpoint in found} == expected


def test_the_states_cover_every_live_endpoint_once(fleet) -> None:
    live = Endpoint.objects.live()

    counted = [endpoint.name for state in State.values for endpoint in live.in_state(state)]

    assert sorted(counted) == sorted(live.values_list("name", flat=True))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", EVERY),
        ("?q=CHURN", {"churn-a", "churn-b"}),
        ("?state=attention", {"broken", "rollback-failed"}),
        ("?kind=serverless", {"churn-b"}),
        ("?kind=real-time&state=serving", {"churn-a"}),
        ("?state=bogus&kind=nonsense", EVERY),
    ],
)  # fmt: skip
def test_the_list_shows_what_its_filters_ask_for(client_for, fleet, query, expected) -> None:
    html = client_for("viewer").get(f"/endpoints/{query}").content.decode()

    assert names(html) == expected


def test_an_environment_narrows_the_list_and_an_unknown_one_is_ignored(client_for, fleet) -> None:
    client = client_for("viewer")
    prod = fleet["broken"].environment

    narrowed = client.get(f"/endpoints/?environment={prod.pk}").content.decode()
    unknown = client.get("/endpoints/?environment=999999").content.decode()

    assert names(narrowed) == {"churn-b", "being-updated", "broken"}
    assert f'<option value="{prod.pk}" selected>prod</option>' in narrowed
    assert names(unknown) == EVERY
    assert ">Clear</a>" not in unknown  # nothing it understood was applied


def test_a_filter_with_no_match_says_so_and_offers_to_clear(client_for, fleet) -> None:
    html = client_for("viewer").get("/endpoints/?q=nothing-like-this").content.decode()

    assert "No endpoint matches" in html
    assert ">Clear</a>" in html
    assert "No endpoint yet" not in html


def test_the_poll_keeps_the_filters(client_for, fleet) -> None:
    client = client_for("viewer")

    page = client.get("/endpoints/?state=in-progress").content.decode()
    poll = client.get("/endpoints/?state=in-progress", HTTP_HX_REQUEST="true").content.decode()

    assert 'hx-get="/endpoints/?state=in-progress"' in page
    assert names(poll) == {"being-updated", "new-one", "waiting"}


def test_each_home_figure_counts_the_rows_its_link_shows(client_for, fleet) -> None:
    client = client_for("viewer")
    home = client.get("/").content.decode()

    figures = re.findall(
        r'<a class="stat[^"]*" href="([^"]+)"><span class="stat-value">(\d+)</span>', home
    )

    assert len(figures) == 3
    for link, count in figures:
        assert len(names(client.get(link.replace("&amp;", "&")).content.decode())) == int(count)


def test_an_unknown_state_is_refused_by_the_queryset() -> None:
    with pytest.raises(ValueError, match="not an endpoint state"):
        Endpoint.objects.live().in_state("healthy")
