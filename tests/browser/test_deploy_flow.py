"""In a real browser, a Deployer registers a model, walks the serverless wizard (correcting one
invalid step), watches the endpoint reach InService on the local runtime, updates it and
deletes it. Celery runs eagerly and the test plays beat's part by polling."""

import time

import pytest

from endpoints.models import Endpoint
from endpoints.tasks import poll_endpoints
from environments.models import Environment
from portal.celery import app as celery_app
from tests.conftest import sign_in
from tests.runtime import artifacts

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def until(page, condition, what: str, timeout: float = 60) -> None:
    """Poll the provider as beat would, until the page shows what we wait for."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        poll_endpoints()
        page.wait_for_timeout(300)


def test_deployer_registers_deploys_updates_and_deletes_a_serverless_endpoint(
    page, user_for, runtime_url, runtime_dirs
) -> None:
    celery_app.conf.task_always_eager = True
    try:
        run_flow(page, user_for, runtime_dirs)
    finally:
        celery_app.conf.task_always_eager = False


def run_flow(page, user_for, runtime_dirs) -> None:
    Environment.objects.create(name="local", bucket="demo", prefix="portal/")
    artifacts.write(
        runtime_dirs["s3"], "s3://demo/portal/iris/model.tar.gz", artifacts.iris_like_classifier()
    )
    sign_in(page, user_for("deployer").username)

    page.click("nav.mainnav a:text-is('Models')")
    page.click("text=Register a model")
    page.fill("#id_name", "iris")
    page.fill("#id_containers-0-image", "sklearn")
    page.fill("#id_containers-0-model_data_url", "s3://demo/portal/iris/model.tar.gz")
    page.click("button:text-is('Register model')")
    assert "iris is registered" in page.locator(".messages").inner_text()

    page.click("a:text-is('Deploy')")
    page.fill("#id_name", "iris-sls")
    page.check("input[value=serverless]")
    page.click(".wizard-actions button:text-is('Save and continue')")
    page.fill("#id_max_concurrency", "0")
    page.click(".wizard-actions button:text-is('Save and continue')")
    error = page.locator(".field.has-error .error").first.inner_text()
    page.fill("#id_max_concurrency", "5")
    page.click(".wizard-actions button:text-is('Save and continue')")
    review = page.locator("main").inner_text()
    page.click("button:text-is('Create endpoint')")

    until(page, lambda: page.locator("#endpoint-live .status-inservice").count() == 1, "InService")
    endpoint = Endpoint.objects.get(name="iris-sls")
    answer = endpoint.environment.backend.invoke("iris-sls", b"9,1", content_type="text/csv")

    page.click("a:text-is('Update')")
    page.fill("#id_max_concurrency", "10")
    page.click(".wizard-actions button:text-is('Save and continue')")
    page.click("button:text-is('Update endpoint')")
    until(page, lambda: "Update finished." in page.locator(".timeline").inner_text(), "update")
    updated = endpoint.environment.backend.describe_endpoint("iris-sls")

    page.fill("#confirm", "iris-sls")
    page.click("button:text-is('Delete endpoint')")
    until(page, lambda: Endpoint.objects.get(pk=endpoint.pk).status == "Deleted", "deletion")

    assert "1 to 200" in error
    assert '"MaxConcurrency": 5' in review and "The same as boto3 code" in review
    assert answer.body == b'{"predictions": [1]}'
    assert updated.variants[0].serverless["MaxConcurrency"] == 10
    assert endpoint.environment.backend.describe_endpoint("iris-sls") is None
