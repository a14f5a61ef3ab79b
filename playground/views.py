"""The playground, for Engineers and above: invoking an endpoint runs a model."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import Role, role_required


@role_required(Role.ENGINEER)
def playground(request: HttpRequest) -> HttpResponse:
    return render(request, "playground/playground.html")
