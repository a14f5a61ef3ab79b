"""Where alerts go and how each one fared; Admins send a test alert."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts.roles import Role, role_required
from alerts import delivery
from alerts.models import Alert


@require_safe
@role_required(Role.DEPLOYER)
def alert_list(request: HttpRequest) -> HttpResponse:
    context = {
        "page": Paginator(Alert.objects.all(), 50).get_page(request.GET.get("page")),
        "host": delivery.webhook_host(),
        "linked": bool(settings.PORTAL_BASE_URL),
        "max_attempts": delivery.MAX_ATTEMPTS,
    }
    return render(request, "alerts/alert_list.html", context)


@require_POST
@role_required(Role.ADMIN)
def send_test(request: HttpRequest) -> HttpResponse:
    """Send one alert now, in this request, and say whether the webhook took it."""
    if not delivery.webhook_url():
        messages.error(request, "Alerts are off: set PORTAL_ALERT_WEBHOOK_URL first.")
        return redirect("alerts:list")
    text = f"Test alert from Endpoint Portal, sent by {request.user.get_username()}."
    alert = Alert.objects.create(kind=Alert.Kind.TEST, text=text)
    if delivery.deliver(alert.pk):
        messages.success(request, f"{delivery.webhook_host()} took the test alert.")
    else:
        alert.refresh_from_db()
        messages.error(request, f"The test alert was not sent: {alert.last_error}")
    return redirect("alerts:list")
