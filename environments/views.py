"""Environments: everyone reads them, Admins add and change them."""

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe

from accounts.roles import Role, role_required
from alerts import delivery
from environments.backends.base import ProviderError
from environments.forms import EnvironmentForm
from environments.models import Environment


@require_safe
@role_required(Role.VIEWER)
def environment_list(request: HttpRequest) -> HttpResponse:
    environments = Environment.objects.all()
    return render(request, "environments/environment_list.html", {"environments": environments})


@require_safe
@role_required(Role.VIEWER)
def environment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    environment = get_object_or_404(Environment, pk=pk)
    context = {"environment": environment, "alert_host": delivery.webhook_host()}
    return render(request, "environments/environment_detail.html", context)


@sensitive_post_parameters("external_id")
@role_required(Role.ADMIN)
def environment_create(request: HttpRequest) -> HttpResponse:
    return save_environment(request, Environment())


@sensitive_post_parameters("external_id")
@role_required(Role.ADMIN)
def environment_update(request: HttpRequest, pk: int) -> HttpResponse:
    return save_environment(request, get_object_or_404(Environment, pk=pk))


@require_POST
@role_required(Role.ADMIN)
def test_connection(request: HttpRequest, pk: int) -> HttpResponse:
    """Try each permission the portal needs and say plainly which work and which are denied."""
    environment = get_object_or_404(Environment, pk=pk)
    context = {"environment": environment, "tested": True}
    try:
        context["checks"] = environment.backend.test_connection()
    except ProviderError as error:  # e.g. no credentials at all: nothing could be tried
        context["error"] = error
    if request.htmx:
        return render(request, "environments/environment_detail.html#connection", context)
    return render(request, "environments/environment_detail.html", context)


def save_environment(request: HttpRequest, environment: Environment) -> HttpResponse:
    """The shared form flow of create and update; the caller has checked the role."""
    form = EnvironmentForm(request.POST or None, instance=environment)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            environment = form.save()
        messages.success(request, f"Environment {environment.name} is saved.")
        return redirect("environments:detail", pk=environment.pk)
    return render(request, "environments/environment_form.html", {"form": form})
