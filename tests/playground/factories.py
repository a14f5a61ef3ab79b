"""Playground rows for tests that need one without invoking anything."""

from endpoints.models import Endpoint
from playground.models import Invocation, PinnedExample
from tests.factories import EnvironmentFactory, UserFactory


def endpoint(**fields: object) -> Endpoint:
    values = {"name": "iris", "spec": {"variants": []}, "status": Endpoint.Status.IN_SERVICE}
    if "environment" not in fields:
        values["environment"] = EnvironmentFactory()
    return Endpoint.objects.create(**(values | fields))


def invocation(**fields: object) -> Invocation:
    target = fields.pop("endpoint", None) or endpoint()
    values = {
        "user": UserFactory(),
        "endpoint": target,
        "endpoint_name": target.name,
        "content_type": "text/csv",
        "request_inline": b"5.1,3.5,1.4,0.2",
        "request_size": 15,
        "state": Invocation.State.DONE,
        "status_code": 200,
        "response_inline": b'{"predictions": [0]}',
        "response_size": 20,
        "response_content_type": "application/json",
    }
    return Invocation.objects.create(**(values | fields))


def pinned_example(**fields: object) -> PinnedExample:
    values = {
        "endpoint": fields.pop("endpoint", None) or endpoint(),
        "name": "setosa",
        "content_type": "text/csv",
        "body": "5.1,3.5,1.4,0.2",
        "pinned_by": UserFactory(),
    }
    return PinnedExample.objects.create(**(values | fields))
