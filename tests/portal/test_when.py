"""Times on pages read as people say them: "just now", not "0 minutes ago"."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from endpoints.models import Endpoint
from portal.templatetags.when import ago
from tests.factories import EnvironmentFactory


def test_under_a_minute_is_just_now_and_later_says_how_long_ago() -> None:
    now = timezone.now()

    assert ago(now) == "just now"
    assert ago(now - timedelta(seconds=59)) == "just now"
    assert ago(now + timedelta(seconds=5)) == "just now"  # another process's clock, a little ahead
    assert ago(now - timedelta(minutes=5, seconds=3)) == "5\xa0minutes ago"
    assert ago(now - timedelta(days=2, hours=3)) == "2\xa0days, 3\xa0hours ago"
    assert ago(None) == ""


@pytest.mark.django_db
def test_a_new_endpoint_was_updated_just_now_and_an_old_one_hours_ago(client_for) -> None:
    environment = EnvironmentFactory()
    Endpoint.objects.create(environment=environment, name="fresh", spec={"variants": []})
    old = Endpoint.objects.create(environment=environment, name="old", spec={"variants": []})
    Endpoint.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(hours=3))

    page = client_for("viewer").get(reverse("endpoints:list")).content.decode()

    assert "just now" in page and "3\xa0hours ago" in page
    assert "0\xa0minutes" not in page
