"""Model cards, readable by every role, stakeholders included."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.roles import Role, role_required


@require_safe
@role_required(Role.VIEWER)
def card_list(request: HttpRequest) -> HttpResponse:
    return render(request, "modelcards/card_list.html")
