"""The Celery app: deployments and polling run here, configured from Django's CELERY_* settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal", include=["portal.tasks"])  # the apps' tasks are autodiscovered
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
