"""Registered models and endpoints, readable by every role."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.roles import Role, role_required


@require_safe
@role_required(Role.VIEWER)
def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "endpoints/model_list.html")


@require_safe
@role_required(Role.VIEWER)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    return render(request, "endpoints/endpoint_list.html")
