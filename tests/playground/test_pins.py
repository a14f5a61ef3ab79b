"""Pinned examples: a request that worked, shared on its endpoint with the team."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from playground.models import PinnedExample
from tests.playground.factories import endpoint, invocation, pinned_example

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pinning_shares_the_request_and_is_audited(user_for):
    engineer = user_for("engineer")
    row = invocation(user=engineer, custom_attributes="trace=1", target_variant="Blue")

    response = signed_in(engineer).post(
        reverse("playground:pin", args=[row.pk]), {"name": "setosa"}, follow=True
    )

    pin = PinnedExample.objects.get()
    assert (pin.endpoint, pin.body, pin.content_type) == (
        row.endpoint,
        "5.1,3.5,1.4,0.2",
        "text/csv",
    )
    assert (pin.custom_attributes, pin.target_variant) == ("trace=1", "Blue")
    assert "Pinned “setosa” to iris for the team." in response.content.decode()
    assert AuditEntry.objects.filter(object_repr="setosa", action="create").exists()


def test_a_second_pin_of_the_same_name_is_refused(user_for):
    engineer = user_for("engineer")
    row = invocation(user=engineer)
    pinned_example(endpoint=row.endpoint, name="setosa")

    response = signed_in(engineer).post(
        reverse("playground:pin", args=[row.pk]), {"name": "setosa"}, follow=True
    )

    assert "iris already has an example named “setosa”" in response.content.decode()
    assert PinnedExample.objects.count() == 1


def test_a_binary_body_cannot_be_pinned(user_for):
    engineer = user_for("engineer")
    row = invocation(user=engineer, request_inline=b"\xff\xd8\xff", request_size=3)

    response = signed_in(engineer).post(
        reverse("playground:pin", args=[row.pk]), {"name": "photo"}, follow=True
    )

    assert "Only text bodies can be pinned" in response.content.decode()
    assert not PinnedExample.objects.exists()


def test_someone_elses_invocation_cannot_be_pinned(user_for):
    row = invocation()

    response = signed_in(user_for("engineer")).post(
        reverse("playground:pin", args=[row.pk]), {"name": "mine"}
    )

    assert response.status_code == 404


def test_only_the_pinner_or_a_deployer_may_unpin(user_for):
    pin = pinned_example()
    url = reverse("playground:unpin", args=[pin.pk])

    refused = signed_in(user_for("engineer")).post(url, follow=True)
    kept = PinnedExample.objects.filter(pk=pin.pk).exists()
    signed_in(user_for("deployer")).post(url)

    assert "Only the person who pinned an example, or a Deployer" in refused.content.decode()
    assert kept and not PinnedExample.objects.exists()


def test_the_page_offers_a_pin_and_prefills_the_form_from_it(client_for):
    target = endpoint()
    pin = pinned_example(endpoint=target, body="6.3,3.3,6.0,2.5", accept="text/csv")
    client = client_for("engineer")

    page = client.get(reverse("playground:index"), {"endpoint": target.pk, "pin": pin.pk})

    assert page.context["form"].initial["body"] == "6.3,3.3,6.0,2.5"
    assert page.context["form"].initial["accept"] == "text/csv"
    assert "pinned example “setosa”" in page.content.decode()
