"""In a real browser, the home page's endpoint overview follows a deployment by itself and stops
polling once nothing is on its way."""

import time

import pytest

from endpoints.models import Endpoint
from tests.conftest import sign_in
from tests.factories import EnvironmentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_overview_follows_a_deployment_until_it_settles(page, user_for) -> None:
    environment = EnvironmentFactory()
    endpoint = Endpoint.objects.create(
        environment=environment, name="churn", status=Endpoint.Status.CREATING
    )
    sign_in(page, user_for("viewer").username)
    page.goto("/")
    assert page.locator("#endpoint-overview .status-creating").count() == 1
    polls = []
    page.on(
        "request",
        lambda request: polls.append(request) if request.headers.get("hx-request") else None,
    )

    endpoint.status = Endpoint.Status.IN_SERVICE
    endpoint.save()
    page.locator("#endpoint-overview:not([hx-get])").wait_for(timeout=15_000)

    assert "The endpoint is in service." in page.locator("#endpoint-overview").inner_text()
    assert page.locator("#endpoint-overview .stat-value").all_inner_texts() == ["1", "0", "0"]
    settled = len(polls)
    assert settled >= 1
    time.sleep(4)  # longer than one poll interval: none comes once settled
    assert len(polls) == settled
