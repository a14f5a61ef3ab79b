"""Invoking demo endpoints deployed for real on a local runtime: by TargetModel, by container
hostname, compared side by side, async through storage, rerun from the history, pinned, and
sent again with the code the page shows."""

import json
import os
import shlex
import subprocess
import time

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from endpoints.models import Endpoint
from playground.models import Invocation, PinnedExample
from playground.tasks import watch_async

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def invoke(client, endpoint, **fields):
    data = {"endpoint": endpoint.pk, "content_type": "application/json"} | fields
    return client.post(reverse("playground:invoke"), data, HTTP_HX_REQUEST="true")


def latest() -> Invocation:
    return Invocation.objects.order_by("-pk").first()


def prediction(invocation: Invocation) -> float:
    return json.loads(invocation.response_body())["predictions"][0]


def test_multi_model_endpoint_answers_with_the_model_each_target_names(client_for, deployed):
    diabetes = deployed("diabetes")["diabetes"]
    client = client_for("engineer")
    page = client.get(reverse("playground:index"), {"endpoint": diabetes.pk})
    body = page.context["form"].initial["body"]
    backend = diabetes.environment.backend

    answers = {}
    for name in ("linear.tar.gz", "lasso.tar.gz"):
        response = invoke(client, diabetes, target_model=name, body=body)
        answers[name] = prediction(latest())
        direct = backend.invoke(
            "diabetes", body.encode(), content_type="application/json", target_model=name
        )
        assert answers[name] == json.loads(direct.body)["predictions"][0]
        assert response.status_code == 200 and latest().target_model == name
        assert 0 < latest().model_ms < latest().total_ms  # the runtime reports the model's time
    missing = invoke(client, diabetes, target_model="nope.tar.gz", body=body)

    assert page.context["models"] == ["lasso.tar.gz", "linear.tar.gz", "ridge.tar.gz"]
    assert answers["linear.tar.gz"] != answers["lasso.tar.gz"]
    assert "There is no model nope.tar.gz under this endpoint" in missing.content.decode()
    assert latest().status_code == 400


def test_compare_sends_one_input_to_two_targets_side_by_side(client_for, deployed):
    diabetes = deployed("diabetes")["diabetes"]
    client = client_for("engineer")
    form = client.get(reverse("playground:compare"), {"endpoint": diabetes.pk}).context["form"]

    response = client.post(
        reverse("playground:compare"),
        {
            "left_endpoint": diabetes.pk,
            "left_target": "model:linear.tar.gz",
            "right_endpoint": diabetes.pk,
            "right_target": "model:ridge.tar.gz",
            "content_type": "application/json",
            "body": form.initial["body"],
        },
    )

    left, right = (side["invocation"] for side in response.context["sides"])
    assert (left.target_model, right.target_model) == ("linear.tar.gz", "ridge.tar.gz")
    assert left.compare_group == right.compare_group != ""
    assert prediction(left) != prediction(right)
    assert left.total_ms > 0 and right.total_ms > 0
    html = response.content.decode()
    assert html.count('class="card pg-result"') == 2 and "Total" in html


def test_direct_containers_answer_by_hostname_and_model_errors_carry_the_message(
    client_for, deployed
):
    tools = deployed("text-tools")["text-tools"]
    client = client_for("engineer")
    text = json.dumps({"text": "great and fast"})

    invoke(client, tools, target_container="sentiment", body=text)
    mood = json.loads(latest().response_body())
    invoke(client, tools, target_container="statistics", body=text)
    counts = json.loads(latest().response_body())
    broken = invoke(client, tools, target_container="sentiment", body="not json")

    assert mood["label"] == "positive"
    assert counts["words"] == 3
    row = latest()
    assert (row.status_code, row.error_code) == (424, "ModelError")
    assert "Expecting value" in row.error_message  # what json.loads said inside the model
    assert "Expecting value" in broken.content.decode()


def test_an_endpoint_being_updated_still_answers(client_for, deployed):
    iris = deployed("iris")["iris"]
    # What the portal records while an update builds the new fleet beside the serving one.
    Endpoint.objects.filter(pk=iris.pk).update(status=Endpoint.Status.UPDATING)

    response = invoke(client_for("engineer"), iris, content_type="text/csv", body="5.1,3.5,1.4,0.2")

    assert response.status_code == 200
    assert (latest().state, latest().status_code) == (Invocation.State.DONE, 200)
    assert prediction(latest()) == 0


def test_history_reruns_and_pins_a_request(client_for, user_for, deployed):
    iris = deployed("iris")["iris"]
    engineer, other = user_for("engineer"), user_for("engineer")
    client = client_for("anon")
    client.force_login(engineer)
    invoke(client, iris, content_type="text/csv", body="6.7,3.0,5.2,2.3")
    first = latest()

    rerun = client.post(reverse("playground:rerun", args=[first.pk]))
    again = latest()
    history = client.get(reverse("playground:history"))
    client.post(reverse("playground:pin", args=[first.pk]), {"name": "virginica"})
    page = client.get(reverse("playground:index"), {"endpoint": iris.pk})
    client.force_login(other)
    others_history = client.get(reverse("playground:history"))
    others_view = client.get(reverse("playground:invocation", args=[first.pk]))

    assert rerun.status_code == 302 and rerun["Location"].endswith(f"/invocations/{again.pk}/")
    assert again.pk != first.pk
    assert again.request_body() == first.request_body() == b"6.7,3.0,5.2,2.3"
    assert again.response_body() == first.response_body() == b'{"predictions": [2]}'
    assert list(history.context["invocations"]) == [again, first]
    assert list(others_history.context["invocations"]) == []
    assert others_view.status_code == 404
    pin = PinnedExample.objects.get()
    assert (pin.name, pin.body, pin.pinned_by) == ("virginica", "6.7,3.0,5.2,2.3", engineer)
    assert AuditEntry.objects.filter(object_repr="virginica").exists()
    assert page.context["form"].initial["body"] == "6.7,3.0,5.2,2.3"
    assert "virginica" in page.content.decode()


def test_the_shown_curl_and_cli_commands_get_the_same_answer(client_for, deployed, tmp_path):
    iris = deployed("iris")["iris"]
    client = client_for("engineer")
    result = invoke(client, iris, content_type="text/csv", body="5.1,3.5,1.4,0.2")
    snippets = dict(result.context["snippets"])
    environment = os.environ | {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}

    curl = subprocess.run(
        ["bash", "-c", snippets["curl"]], cwd=tmp_path, capture_output=True, check=True
    )
    subprocess.run(["bash", "-c", snippets["AWS CLI"]], cwd=tmp_path, env=environment, check=True)

    assert json.loads(curl.stdout) == {"predictions": [0]}
    assert json.loads((tmp_path / "answer.out").read_text()) == {"predictions": [0]}
    assert shlex.quote(iris.name) in snippets["curl"]


def test_async_request_is_pending_until_its_output_lands(client_for, deployed):
    endpoint = deployed("iris-async")["iris-async"]
    client = client_for("engineer")

    queued = invoke(client, endpoint, content_type="text/csv", body="5.1,3.5,1.4,0.2")
    row = latest()
    uploaded = endpoint.environment.backend.read_object(row.input_location)
    wait_for_async(row)
    done = client.get(reverse("playground:result", args=[row.pk]), HTTP_HX_REQUEST="true")
    invoke(client, endpoint, content_type="text/csv", body="not,a,number,row")
    failing = latest()
    wait_for_async(failing)

    assert 'hx-trigger="every 2s"' in queued.content.decode()
    assert uploaded == b"5.1,3.5,1.4,0.2"
    assert row.input_location.startswith("s3://portal-demo/portal/playground/")
    row.refresh_from_db()
    assert (row.state, json.loads(row.response_body())) == ("done", {"predictions": [0]})
    assert "every 2s" not in done.content.decode()
    assert failing.state == "failed"
    assert failing.error_message.startswith("The model failed:")


def wait_for_async(invocation: Invocation) -> None:
    """Play beat's part: run the watcher until the row leaves pending."""
    deadline = time.monotonic() + 60
    while invocation.is_pending:
        assert time.monotonic() < deadline, "no async answer"
        # Due now, without waiting out the check interval.
        Invocation.objects.filter(pk=invocation.pk).update(next_check_at=invocation.created_at)
        watch_async()
        time.sleep(0.2)
        invocation.refresh_from_db()
