"""The home page: each section's tile describes that section, and the endpoint overview says what
is in service, what is on its way and what needs a person."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.context_processors import NAVIGATION
from endpoints.models import Deployment, Endpoint
from portal.views import OVERVIEW_ROWS
from tests.factories import EnvironmentFactory

pytestmark = pytest.mark.django_db


def tiles(html: str) -> dict[str, str]:
    """Each tile's heading and its description."""
    found = re.findall(
        r'<a class="card tile" href="[^"]*">\s*<h2>([^<]+)</h2>\s*<p class="muted">([^<]*)</p>',
        html,
    )
    return dict(found)


def overview(html: str) -> str:
    match = re.search(r'<div id="endpoint-overview".*?</section>', html, re.S)
    assert match, "the page has no endpoint overview"
    return match.group(0)


def stats(html: str) -> dict[str, int]:
    """The overview's figures by their label."""
    found = re.findall(
        r'<span class="stat-value">(\d+)</span><span class="stat-label">([^<]+)</span>', html
    )
    return {label: int(value) for value, label in found}


def endpoint(environment, name: str, status: str, reason: str = "", minutes_ago: int = 0):
    row = Endpoint.objects.create(
        environment=environment, name=name, status=status, failure_reason=reason
    )
    if minutes_ago:
        moment = timezone.now() - timedelta(minutes=minutes_ago)
        Endpoint.objects.filter(pk=row.pk).update(updated_at=moment)
    return row


@pytest.mark.parametrize("role", ["viewer", "engineer", "admin"])
def test_each_tile_describes_its_own_section(client_for, role) -> None:
    # A Viewer has no Playground: the tiles after it must not shift onto the wrong section.
    html = client_for(role).get("/").content.decode()

    shown = tiles(html)

    expected = {section.label: section.description for section in NAVIGATION}
    assert shown, "no tiles"
    assert "Insights" in shown
    for label, description in shown.items():
        assert description == expected[label], label
    assert ("Playground" in shown) is (role != "viewer")


def test_the_overview_counts_endpoints_by_what_they_need(client_for) -> None:
    environment = EnvironmentFactory()
    endpoint(environment, "serving-a", Endpoint.Status.IN_SERVICE)
    endpoint(environment, "serving-b", Endpoint.Status.IN_SERVICE)
    updating = endpoint(environment, "being-updated", Endpoint.Status.IN_SERVICE, minutes_ago=5)
    Deployment.objects.create(endpoint=updating, action="update", generation=2)
    endpoint(environment, "new-one", Endpoint.Status.CREATING, minutes_ago=1)
    endpoint(environment, "broken", Endpoint.Status.FAILED, reason="Image not found: sklearn:9")
    gone = endpoint(environment, "deleted-one", Endpoint.Status.FAILED)
    Endpoint.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())

    html = overview(client_for("viewer").get("/").content.decode())

    assert stats(html) == {"in service": 2, "in progress": 2, "needs attention": 1}
    assert "Image not found: sklearn:9" in html
    rows = re.findall(r'<a href="/endpoints/\d+/">([^<]+)</a>', html)
    assert rows == ["broken", "new-one", "being-updated"]  # attention first, then newest
    assert "deleted-one" not in html and "serving-a" not in html
    assert 'hx-trigger="every 3s"' in html  # something is on its way: the overview polls


def test_when_everything_serves_the_overview_says_so_and_does_not_poll(client_for) -> None:
    environment = EnvironmentFactory()
    endpoint(environment, "alpha", Endpoint.Status.IN_SERVICE)
    endpoint(environment, "beta", Endpoint.Status.IN_SERVICE)

    html = overview(client_for("viewer").get("/").content.decode())

    assert "All 2 endpoints are in service." in html
    assert stats(html) == {"in service": 2, "in progress": 0, "need attention": 0}
    assert "hx-get" not in html
    assert "<table" not in html


def test_the_poll_gets_only_the_overview(client_for) -> None:
    environment = EnvironmentFactory()
    endpoint(environment, "new-one", Endpoint.Status.CREATING)
    client = client_for("viewer")

    answer = client.get("/", HTTP_HX_REQUEST="true")

    html = answer.content.decode()
    assert answer.status_code == 200
    assert html.lstrip().startswith('<div id="endpoint-overview"')
    assert "<nav" not in html and "card tile" not in html
    assert stats(html)["in progress"] == 1


def test_a_failure_reason_is_shown_as_text_inside_hx_disable(client_for) -> None:
    environment = EnvironmentFactory()
    reason = '<img src=x onerror=alert(1)> <b hx-get="/accounts/users/" hx-trigger="load">x</b>'
    endpoint(environment, "broken", Endpoint.Status.FAILED, reason=reason)

    html = overview(client_for("viewer").get("/").content.decode())

    assert "<img src=x" not in html and '<b hx-get="/accounts/users/"' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    table = html.index("<table")
    assert html.rfind("hx-disable", 0, table) > html.rfind("</div>", 0, table)


def test_with_no_endpoint_a_deployer_is_sent_to_the_endpoints_page(client_for) -> None:
    deployer = overview(client_for("deployer").get("/").content.decode())
    viewer = overview(client_for("viewer").get("/").content.decode())

    assert "No endpoint yet" in deployer and "No endpoint yet" in viewer
    assert 'href="/endpoints/"' in deployer
    assert "Go to endpoints" not in viewer


def test_a_long_list_is_cut_and_says_how_many_more(client_for) -> None:
    environment = EnvironmentFactory()
    for number in range(OVERVIEW_ROWS + 4):
        endpoint(environment, f"broken-{number}", Endpoint.Status.FAILED, reason="No image.")

    html = overview(client_for("viewer").get("/").content.decode())

    assert len(re.findall(r'<a href="/endpoints/\d+/">', html)) == OVERVIEW_ROWS
    assert "4 more not shown" in html
    assert stats(html)["need attention"] == OVERVIEW_ROWS + 4
