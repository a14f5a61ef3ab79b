"""Sign-in rules applied to every request: login required, session limits, one-time passwords."""

import time
from collections.abc import Callable
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

SESSION_LOGIN_AT = "portal_login_at"
SESSION_SEEN_AT = "portal_seen_at"


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every view needs a signed-in user unless marked `@login_not_required`.

    An htmx request must not get a login page swapped into a fragment, so it is answered 401
    with `HX-Redirect`, which makes htmx load the login page as a whole page.
    """

    def handle_no_permission(self, request: HttpRequest, view_func: Callable) -> HttpResponse:
        if getattr(request, "htmx", False) or request.headers.get("HX-Request") == "true":
            login = f"{reverse(settings.LOGIN_URL)}?next={quote(request.get_full_path())}"
            response = HttpResponse("Your session has ended. Please sign in again.", status=401)
            response["HX-Redirect"] = login
            return response
        return super().handle_no_permission(request, view_func)


class SessionLimitsMiddleware:
    """End a session after SESSION_IDLE_SECONDS without a request or SESSION_ABSOLUTE_SECONDS
    after sign-in, whichever comes first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            login_at = request.session.setdefault(SESSION_LOGIN_AT, now)
            seen_at = request.session.get(SESSION_SEEN_AT, now)
            idle = now - seen_at > settings.SESSION_IDLE_SECONDS
            expired = now - login_at > settings.SESSION_ABSOLUTE_SECONDS
            if idle or expired:
                logout(request)
            elif now - seen_at >= 60:  # write the session at most once a minute
                request.session[SESSION_SEEN_AT] = now
            else:
                request.session.setdefault(SESSION_SEEN_AT, now)
        return self.get_response(request)


class PasswordChangeRequiredMiddleware:
    """A user signed in with a one-time password may only choose a new one, or sign out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and user.must_change_password:
            allowed = {reverse("accounts:password_change"), reverse("accounts:logout")}
            if request.path not in allowed and not request.path.startswith(settings.STATIC_URL):
                return redirect("accounts:password_change")
        return self.get_response(request)
