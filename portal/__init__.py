"""The project: settings, URLs, the Celery app and the health check that ties the apps together."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
