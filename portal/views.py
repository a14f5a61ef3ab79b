"""The home page and /healthz."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe

from accounts.roles import ROLE_DESCRIPTIONS, Role, role_required
from endpoints.models import Endpoint, State
from environments.models import Environment
from portal import health

# The home page lists at most this many unsettled endpoints; its figures link to the full lists.
OVERVIEW_ROWS = 15


@require_safe
@role_required(Role.VIEWER)
def home(request: HttpRequest) -> HttpResponse:
    """What a team member asks first: what is deployed, what is on its way, what is broken. The
    groups are EndpointQuerySet.in_state's, which the Endpoints list filters by."""
    live = Endpoint.objects.live()
    rows = live.select_related("environment").order_by("-updated_at", "name")
    attention = list(rows.in_state(State.ATTENTION))
    progress = list(rows.in_state(State.IN_PROGRESS))
    listed = attention + progress
    context = {
        "any_endpoint": live.exists(),
        "in_service": live.in_state(State.SERVING).count(),
        "attention": attention,
        "progress": progress,
        "listed": listed[:OVERVIEW_ROWS],
        "unlisted": len(listed) - OVERVIEW_ROWS,
        "waiting": bool(progress),
    }
    template = "home.html"
    if request.htmx and not request.htmx.boosted:
        template += "#overview"  # the poll while something is on its way
    else:
        context |= {
            "environments": Environment.objects.all(),
            "role_description": ROLE_DESCRIPTIONS[request.user.role],
        }
    return render(request, template, context)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403: says which role the page needs, or that no Admin has given this account a role yet."""
    user = request.user
    context = {
        "reason": str(exception) if exception and str(exception) else "",
        "has_no_role": user.is_authenticated and user.role is None,
    }
    if request.htmx:
        return HttpResponse(context["reason"] or "Forbidden", status=403)
    return render(request, "403.html", context, status=403)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers. The broker, the worker and the runtime are reported, and
    a failure of any makes the status "degraded": pages still work, deployments and invocations
    wait. 503 only when the database is down, as then nothing works."""
    checks = health.check_all()
    by_name = {check.name: check for check in checks}
    if not by_name["database"].ok:
        status, code = "down", 503
    elif all(check.ok for check in checks):
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    body = {
        "status": status,
        "checks": {
            check.name: {"ok": check.ok, "detail": check.detail, "ms": check.milliseconds}
            for check in checks
        },
    }
    return JsonResponse(body, status=code)
