"""Registered models and endpoints, readable by every role."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import Role, role_required


@role_required(Role.VIEWER)
def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "endpoints/model_list.html")


@role_required(Role.VIEWER)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    return render(request, "endpoints/endpoint_list.html")
