"""Each user's sessions, so that signing out or a new password ends them in every browser.

Django ends only the current session at sign-out, and a password change only makes the other
sessions fail their hash check on their next request. The sign-out and password views delete
them from the session store, so a stolen session cookie is worthless at once (reliability.md
S8). An idle or expired session (accounts.middleware) ends only itself.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User, UserSession


def session_store() -> type:
    return import_module(settings.SESSION_ENGINE).SessionStore


def remember(user: User, session_key: str | None) -> None:
    """Note that `session_key` is one of `user`'s sessions; forget the ones that have expired."""
    if not session_key:
        return
    store = session_store()
    for old in UserSession.objects.filter(user=user).exclude(session_key=session_key):
        if not store().exists(old.session_key):
            old.delete()
    UserSession.objects.update_or_create(session_key=session_key, defaults={"user": user})


def end_sessions(user: User, keep: str | None = None) -> int:
    """End every session of `user` except `keep`; returns how many were ended."""
    store = session_store()
    ended = 0
    for row in UserSession.objects.filter(user=user).exclude(session_key=keep or ""):
        store(session_key=row.session_key).delete()
        row.delete()
        ended += 1
    return ended


@receiver(user_logged_in, dispatch_uid="accounts-remember-session")
def _remember_session(sender: type, request: HttpRequest, user: User, **kwargs: object) -> None:
    if request is not None and hasattr(request, "session"):
        remember(user, request.session.session_key)
