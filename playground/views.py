"""The playground, for Engineers and above: invoking an endpoint runs a model."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.roles import Role, role_required


@require_safe
@role_required(Role.ENGINEER)
def playground(request: HttpRequest) -> HttpResponse:
    return render(request, "playground/playground.html")
