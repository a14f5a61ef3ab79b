"""Provider calls made for a web request are made with a person waiting."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from environments.backends.aws import person_waiting


def provider_patience(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Each request's control-plane calls (Test connection, logs, metrics, the objects under a
    prefix) use aws.INTERACTIVE_CONFIG: two tries of at most 8 s, where a Celery task's have
    three of 30 s. A page then says "AWS did not answer" within about 17 s, not minutes."""

    def middleware(request: HttpRequest) -> HttpResponse:
        with person_waiting():
            return get_response(request)

    return middleware
