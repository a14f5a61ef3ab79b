"""The async watcher: a pending invocation turns into its output or its failure when one lands
in storage, each row claimed by one watcher at a time. Storage is the local runtime's folder."""

from datetime import timedelta

import pytest
from django.utils import timezone

from endpoints.models import Endpoint
from playground.models import Invocation
from playground.tasks import watch_async
from runtime.storage import LocalStorage
from tests.factories import EnvironmentFactory
from tests.playground.factories import endpoint, invocation

pytestmark = pytest.mark.django_db
OUTPUT = "s3://portal-test/portal/async/out/abc.out"
FAILURE = "s3://portal-test/portal/async/failures/abc-error.out"


@pytest.fixture
def pending(runtime_dirs):
    target = endpoint(environment=EnvironmentFactory(), kind=Endpoint.Kind.ASYNC)
    return invocation(
        endpoint=target,
        mode=Invocation.Mode.ASYNC,
        state=Invocation.State.PENDING,
        status_code=202,
        response_inline=b"",
        response_content_type="",
        accept="application/json",
        output_location=OUTPUT,
        failure_location=FAILURE,
        next_check_at=timezone.now() - timedelta(seconds=1),
    )


def land(settings, uri: str, data: bytes) -> None:
    LocalStorage(settings.LOCAL_S3_ROOT).put(uri, data)


def test_nothing_landed_leaves_it_pending_and_due_later(pending):
    checked = watch_async()

    pending.refresh_from_db()
    assert checked == 1
    assert pending.state == "pending"
    assert pending.next_check_at > timezone.now()


def test_a_row_claimed_by_another_watcher_is_left_alone(pending, settings):
    land(settings, OUTPUT, b'{"predictions": [1]}')
    Invocation.objects.filter(pk=pending.pk).update(
        next_check_at=timezone.now() + timedelta(seconds=5)
    )

    checked = watch_async()

    pending.refresh_from_db()
    assert checked == 0 and pending.state == "pending"


def test_the_output_landing_makes_it_done(pending, settings):
    land(settings, OUTPUT, b'{"predictions": [1]}')

    watch_async()

    pending.refresh_from_db()
    assert pending.state == "done" and pending.status_code == 200
    assert pending.response_body() == b'{"predictions": [1]}'
    assert pending.response_content_type == "application/json"
    assert pending.total_ms > 0 and pending.next_check_at is None


def test_the_failure_landing_makes_it_failed_with_the_models_message(pending, settings):
    land(settings, FAILURE, b"could not convert string to float: 'x'")

    watch_async()

    pending.refresh_from_db()
    assert pending.state == "failed"
    assert pending.error_message == "The model failed: could not convert string to float: 'x'"


def test_it_gives_up_after_the_configured_wait(pending, monkeypatch):
    monkeypatch.setattr("playground.conf.ASYNC_GIVE_UP_SECONDS", 60)
    Invocation.objects.filter(pk=pending.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )

    watch_async()

    pending.refresh_from_db()
    assert pending.state == "failed"
    assert "No answer and no failure after 5 minutes" in pending.error_message
