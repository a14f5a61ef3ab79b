"""Demo endpoints deployed for real on a local runtime, for the playground's tests."""

import time
from collections.abc import Callable

import pytest

from endpoints import demo
from endpoints.models import Endpoint
from endpoints.tasks import advance_deployment, poll_endpoints
from portal.celery import app as celery_app


@pytest.fixture
def deployed(runtime_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict]:
    """deployed("iris", "diabetes") loads the demo workspace and brings those demo endpoints
    to InService on the test's runtime; returns them by name."""

    def deploy(*names: str) -> dict[str, Endpoint]:
        wanted = [entry for entry in demo.DEMO_ENDPOINTS if entry[0] in names]
        monkeypatch.setattr(demo, "DEMO_ENDPOINTS", wanted)
        celery_app.conf.task_always_eager = True
        try:
            environment = demo.load()
            created = demo.deploy_demo(environment)
            for endpoint in created:
                advance_deployment(endpoint.deployments.get().pk)  # what on_commit sends
        finally:
            celery_app.conf.task_always_eager = False
        deadline = time.monotonic() + 120
        live = Endpoint.objects.live().filter(name__in=names)
        while live.exclude(status="InService").exists():
            assert time.monotonic() < deadline, list(
                live.values_list("name", "status", "failure_reason")
            )
            time.sleep(0.3)
            poll_endpoints()
        return {endpoint.name: endpoint for endpoint in live}

    return deploy
