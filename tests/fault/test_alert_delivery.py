"""Alerts through a real worker and beat: alerts whose message never reached the broker, a
webhook that is down at first, and two workers sweeping at once. Each alert reaches the chat
exactly once."""

import time
from collections import Counter

import pytest

from alerts.models import Alert
from tests.alerts.webhook import Webhook
from tests.fault.conftest import Broker, wait

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("kind", ["filesystem", "redis"])
def test_alerts_lost_on_the_way_arrive_once_after_the_webhook_comes_back(
    processes, tmp_path, request, kind
) -> None:
    url = "filesystem://localhost//"
    if kind == "redis":
        url = request.getfixturevalue("redis").url
    broker = Broker(url, tmp_path / "var")
    hook = Webhook()
    hook.statuses = [503, 503, 502]  # the chat is down for the first tries
    # Raised while the broker was unreachable: rows, and no message for any of them.
    texts = [f"Needs attention: endpoint-{n} (prod) is Failed." for n in range(5)]
    for text in texts:
        Alert.objects.create(kind=Alert.Kind.ATTENTION, text=text)
    variables = processes.environment(
        broker,
        PORTAL_ALERT_WEBHOOK_URL=hook.url,
        ALERT_SWEEP_SECONDS="0.5",
        ALERT_FIRST_BACKOFF_SECONDS="0.5",
    )
    try:
        processes.start("worker", "worker-1", variables)
        processes.start("worker", "worker-2", variables)  # two sweeps can run at once
        processes.start("beat", "beat", variables)

        def all_sent() -> bool:
            return not Alert.objects.filter(sent_at__isnull=True).exists()

        wait(all_sent, 90, "every alert to be sent", processes.logs)
        time.sleep(3)  # several more sweeps: none may send an alert again
    finally:
        hook.close()

    assert Counter(hook.taken()) == Counter(texts), hook.answered
    assert len(hook.answered) == len(texts) + 3  # the three refused tries, then one each
    retried = Alert.objects.filter(attempts__gt=1)
    assert retried.exists() and all(alert.last_error == "" for alert in Alert.objects.all())
