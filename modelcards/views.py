"""Model cards, readable by every role, stakeholders included."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import Role, role_required


@role_required(Role.VIEWER)
def card_list(request: HttpRequest) -> HttpResponse:
    return render(request, "modelcards/card_list.html")
