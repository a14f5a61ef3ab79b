"""Times as people read them: "just now", "5 minutes ago"."""

from datetime import datetime, timedelta

from django import template
from django.utils import dateformat, timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """Say "just now" under a minute (Django's timesince alone says "0 minutes"), else
    "5 minutes ago"; nothing for no time."""
    if not value:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def clock(value: datetime | None) -> str:
    """The time of day for a time today; with its date for an earlier day, and its year for an
    earlier year, so that a timeline or a log read days later says when, not only what time."""
    if not value:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    today = timezone.localdate()
    if local.date() == today:
        return dateformat.format(local, "H:i:s")
    if local.year == today.year:
        return dateformat.format(local, "M j, H:i:s")
    return dateformat.format(local, "M j Y, H:i:s")
