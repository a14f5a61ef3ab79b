"""The demo workspace: real models registered, and one click deploys one endpoint of each kind."""

import json
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from endpoints import demo
from endpoints.models import Endpoint, RegisteredModel
from endpoints.tasks import advance_deployment, poll_endpoints
from portal.celery import app as celery_app

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_one_click_brings_every_demo_endpoint_to_in_service(client_for, runtime_url, settings):
    celery_app.conf.task_always_eager = True
    try:
        environment = demo.load()
        client_for("deployer").post(reverse("endpoints:deploy_demo"))
        endpoints = list(Endpoint.objects.live())
        for endpoint in endpoints:
            advance_deployment(endpoint.deployments.get().pk)  # what on_commit sends
        deadline = time.monotonic() + 90
        while Endpoint.objects.live().exclude(status="InService").exists():
            assert time.monotonic() < deadline, list(
                Endpoint.objects.values_list("name", "status", "failure_reason")
            )
            time.sleep(0.3)
            poll_endpoints()
    finally:
        celery_app.conf.task_always_eager = False
    backend = environment.backend

    kinds = {endpoint.kind for endpoint in endpoints}
    iris = backend.invoke("iris", b"5.1,3.5,1.4,0.2", content_type="text/csv")
    ridge = backend.invoke(
        "diabetes",
        json.dumps([[0.0] * 10]).encode(),
        content_type="application/json",
        target_model="ridge.tar.gz",
    )
    mood = backend.invoke(
        "text-tools",
        b'{"text": "great and fast"}',
        content_type="application/json",
        target_container="sentiment",
    )
    assert kinds >= {"real-time", "serverless", "async"}
    assert json.loads(iris.body) == {"predictions": [0]}  # setosa
    assert len(json.loads(ridge.body)["predictions"]) == 1
    assert json.loads(mood.body)["label"] == "positive"
    assert RegisteredModel.objects.filter(name="iris-classifier").count() == 1


def test_the_demo_brings_a_schema_valid_draft_card_for_the_iris_model(settings, tmp_path):
    from modelcards.models import ModelCard
    from modelcards.schema import problems

    settings.LOCAL_S3_ROOT = tmp_path
    demo.load()
    demo.load()  # loading again keeps the one card

    card = ModelCard.objects.get()
    content = card.latest.content
    accuracy = content["evaluation_details"][0]["metric_groups"][0]["metric_data"][0]["value"]
    assert card.status == "Draft" and card.risk_rating == "Low"
    assert [model.name for model in card.registered_models.all()] == ["iris-classifier"]
    assert problems(content) == []
    assert 0.9 <= accuracy <= 1.0


def demo_button(client) -> str | None:
    """The demo button's title (what it would deploy), or None when the list offers no button."""
    html = client.get(reverse("endpoints:list")).content.decode()
    if "Deploy the demo endpoints" not in html:
        return None
    return html.split('title="Deploys ', 1)[1].split(" on the local runtime", 1)[0]


def test_the_demo_button_offers_only_what_is_missing_and_goes_once_all_are_there(
    client_for, settings, tmp_path
) -> None:
    settings.LOCAL_S3_ROOT = tmp_path
    deployer = client_for("deployer")
    assert demo_button(deployer) is None  # no demo workspace loaded: nothing to deploy

    demo.load()
    offered = demo_button(deployer)
    assert offered.startswith("iris, iris-serverless, iris-async, diabetes, text-tools")
    assert demo_button(client_for("engineer")) is None  # only Deployers deploy

    deployer.post(reverse("endpoints:deploy_demo"))
    assert demo_button(deployer) is None

    iris = Endpoint.objects.live().get(name="iris")
    Endpoint.objects.filter(pk=iris.pk).update(deleted_at=timezone.now())
    assert demo_button(deployer) == "iris"

    deployer.post(reverse("endpoints:deploy_demo"))
    assert Endpoint.objects.live().filter(name="iris").count() == 1
    assert Endpoint.objects.filter(name="iris-serverless").count() == 1
    assert demo_button(deployer) is None
