"""Makes the signed-in user the actor of every audit entry written during their request."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.audit import current_actor


class AuditActorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_actor.set(getattr(request, "user", None))
        try:
            return self.get_response(request)
        finally:
            current_actor.reset(token)
