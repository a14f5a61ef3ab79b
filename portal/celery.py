"""The Celery app: deployments and polling run here, configured from Django's CELERY_* settings."""

import logging
import os

from celery import Celery
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS
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


class RoutineTaskLines(logging.Filter):
    """Leaves out the INFO lines for beat's own schedule: each entry's sending, receipt and
    success. They came to a dozen lines every 5 s, and in `make run`'s terminal they pushed the
    one-time password and any real error out of sight within a minute. Retries, failures and
    whatever the tasks log themselves still show, as do all lines of every other task (a
    deployment's steps); at `--loglevel DEBUG` every line shows."""

    ROUTINE_LINES = (LOG_RECEIVED, LOG_SUCCESS, "Scheduler: Sending due task %s (%s)")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.msg not in self.ROUTINE_LINES:
            return True
        if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return True
        arguments = record.args or ()
        # Celery's own calls: trace and strategy log a mapping, beat (entry name, task name).
        if isinstance(arguments, dict):
            task = arguments.get("name")
        else:
            task = arguments[-1] if arguments else None
        return task not in routine_tasks()


def routine_tasks() -> set[str]:
    return {entry["task"] for entry in app.conf.beat_schedule.values()}


ROUTINE_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")
for _name in ROUTINE_TASK_LOGGERS:
    logging.getLogger(_name).addFilter(RoutineTaskLines())
