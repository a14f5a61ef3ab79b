"""Times as people read them: "just now", "5 minutes ago"."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
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
