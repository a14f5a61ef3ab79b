"""Celery tasks of the playground: beat runs `watch_async` every few seconds."""

import contextlib
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from environments.backends.base import ProviderError
from playground import conf, invoke
from playground.models import Invocation

BATCH = 50


@shared_task
def watch_async() -> int:
    """Look once for the answer of every pending async invocation that is due; returns how many
    were looked at. Each row is claimed with a conditional update, so two beats or a slow run
    never look at one row twice at once."""
    now = timezone.now()
    due = list(
        Invocation.objects.pending()
        .filter(next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    checked = 0
    for pk in due:
        claimed = Invocation.objects.filter(
            pk=pk, state=Invocation.State.PENDING, next_check_at__lte=now
        ).update(next_check_at=now + timedelta(seconds=conf.ASYNC_CHECK_SECONDS))
        if not claimed:
            continue  # another watcher has it
        invocation = Invocation.objects.select_related("endpoint__environment").get(pk=pk)
        # Storage unreachable for now: the row stays pending and is looked at again.
        with contextlib.suppress(ProviderError):
            invoke.check_async(invocation)
        checked += 1
    return checked
