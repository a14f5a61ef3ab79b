"""Insights pages, readable by every role."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import Role, role_required


@role_required(Role.VIEWER)
def insights(request: HttpRequest) -> HttpResponse:
    return render(request, "insights/insights.html")
