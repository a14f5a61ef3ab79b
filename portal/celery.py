"""The Celery app: deployments and polling run here, configured from Django's CELERY_* settings."""

import os

from celery import Celery
from celery.signals import worker_ready
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# The laptop broker's "filesystem://" names our transport, which hands out whole messages only
# (portal/broker.py). By the URL's scheme, not broker_transport: a Redis URL stays Redis.
TRANSPORT_ALIASES["filesystem"] = "portal.broker:Transport"

app = Celery("portal", include=["portal.tasks"])  # the apps' tasks are autodiscovered
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def stamp_heartbeat_when_ready(**kwargs: object) -> None:
    """A worker that just started is alive: say so now, not only at beat's next heartbeat."""
    from portal.tasks import heartbeat

    heartbeat()
