"""The Compare form takes each side's target as model:NAME, container:NAME or variant:NAME, or
empty for the default routing. Anything else is an error on that side's field, and the page
keeps what was sent: nothing is invoked and nothing quietly falls back to default routing."""

import html
import re

import pytest
from django.urls import reverse

from endpoints.models import Endpoint
from playground.models import Invocation
from tests.playground.factories import endpoint

pytestmark = pytest.mark.django_db

TARGET_RULE = (
    "Give the target as model:NAME, container:NAME or variant:NAME, "
    "or leave it empty for the endpoint's default routing."
)


def compare(client, target, **fields):
    data = {
        "left_endpoint": target.pk,
        "left_target": "",
        "right_endpoint": target.pk,
        "right_target": "",
        "content_type": "text/csv",
        "body": "5.1,3.5,1.4,0.2",
    } | fields
    return client.post(reverse("playground:compare"), data)


def page_text(response) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", response.content.decode()))


@pytest.mark.parametrize("value", ["foo:bar", "model:", "bogus", "Model:ridge.tar.gz", ":x"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_engineer_sees_a_malformed_target_named_on_its_side_and_nothing_is_sent(
    client_for, side, value
):
    target = endpoint()

    response = compare(client_for("engineer"), target, **{f"{side}_target": value})

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors == {f"{side}_target": [TARGET_RULE]}
    assert TARGET_RULE in page_text(response)
    # The value sent stays chosen in its select, so the user sees what was refused.
    page = response.content.decode()
    assert f'<option value="{html.escape(value)}" selected>' in page
    assert response.context.get("sides") is None
    assert not Invocation.objects.exists()


def test_the_error_appears_beside_the_side_that_has_it(client_for):
    target = endpoint()

    response = compare(client_for("engineer"), target, right_target="foo:bar")

    page = response.content.decode()
    right_fieldset = page[page.index('name="right_target"') :]
    left_fieldset = page[page.index('name="left_target"') : page.index('name="right_target"')]
    assert TARGET_RULE.replace("'", "&#x27;") in right_fieldset
    assert TARGET_RULE.replace("'", "&#x27;") not in left_fieldset


@pytest.mark.parametrize(
    ("value", "field", "name"),
    [
        ("model:ridge.tar.gz", "target_model", "ridge.tar.gz"),
        ("container:sentiment", "target_container", "sentiment"),
        ("variant:Blue", "target_variant", "Blue"),
        ("model:team/a:b.tar.gz", "target_model", "team/a:b.tar.gz"),
    ],
)
def test_well_formed_targets_reach_the_request(client_for, value, field, name):
    # Still Creating: the form passes and the portal's own check refuses both sides, so the
    # history rows show what each side asked for without calling any provider.
    target = endpoint(status=Endpoint.Status.CREATING)

    response = compare(client_for("engineer"), target, left_target=value)

    left, right = (side["invocation"] for side in response.context["sides"])
    assert getattr(left, field) == name
    assert (right.target_model, right.target_container, right.target_variant) == ("", "", "")


def test_an_empty_target_means_the_default_routing(client_for):
    target = endpoint(status=Endpoint.Status.CREATING)

    response = compare(client_for("engineer"), target)

    assert response.context["form"].errors == {}
    left, right = (side["invocation"] for side in response.context["sides"])
    assert left.target == right.target == ""
    assert "is Creating, not In service" in left.error_message
