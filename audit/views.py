"""The audit log page, for Admins."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.roles import Role, role_required
from audit.models import AuditEntry


@require_safe
@role_required(Role.ADMIN)
def audit_list(request: HttpRequest) -> HttpResponse:
    entries = AuditEntry.objects.select_related("content_type")
    query = request.GET.get("q", "").strip()
    if query:
        entries = entries.filter(object_repr__icontains=query) | entries.filter(
            actor_name__icontains=query
        )
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "audit/audit_list.html", {"page": page, "query": query})
