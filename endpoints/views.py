"""Registered models and endpoints: everyone reads them; Deployers register, deploy and delete."""

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts.roles import Role, role_required
from endpoints import demo, deploy, idle, timeline
from endpoints.forms import ContainerFormSet, IdleRulesForm, ModelForm, build_containers
from endpoints.models import (
    TRANSITIONAL,
    Deployment,
    Endpoint,
    RegisteredModel,
    State,
    endpoints_by_model,
)
from environments.backends.base import ProviderError
from environments.models import Environment

TIMELINE_EVENTS = 100  # the endpoint page shows its latest events, and says how many there are


@require_safe
@role_required(Role.VIEWER)
def model_list(request: HttpRequest) -> HttpResponse:
    models = list(
        RegisteredModel.objects.filter(deleted_at__isnull=True).select_related("environment")
    )
    serving = endpoints_by_model(Endpoint.objects.live().order_by("name"))
    for model in models:
        model.serving_endpoints = serving.get(model.pk, [])
    return render(request, "endpoints/model_list.html", {"models": models})


@require_safe
@role_required(Role.VIEWER)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = get_object_or_404(RegisteredModel, pk=pk, deleted_at__isnull=True)
    live = Endpoint.objects.live().filter(environment=model.environment)
    endpoints = endpoints_by_model(live).get(model.pk, [])
    context = {"model": model, "endpoints": endpoints}
    if model.kind == RegisteredModel.Kind.MULTI_MODEL:
        # The TargetModel names a caller may use: the archives under the model's prefix.
        prefix = model.containers[0].get("ModelDataUrl", "")
        try:
            context["targets"] = [
                item.uri.removeprefix(prefix)
                for item in model.environment.backend.list_objects(prefix)
                if item.uri.endswith(".tar.gz")
            ]
        except ProviderError as error:
            context["error"] = error
    return render(request, "endpoints/model_detail.html", context)


@require_safe
@role_required(Role.VIEWER)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    """Every live endpoint, narrowed by name, environment, kind and state (the home page's
    figures link here with a state). Unknown filter values are ignored, not errors: a link from
    an older page still opens."""
    live = Endpoint.objects.live()
    query = request.GET.get("q", "").strip()[:100]
    filters = {key: request.GET.get(key, "") for key in ("environment", "kind", "state")}
    endpoints = live.select_related("environment")
    if query:
        endpoints = endpoints.filter(name__icontains=query)
    environments = list(Environment.objects.filter(endpoints__in=live).distinct().order_by("name"))
    if filters["environment"] in {str(environment.pk) for environment in environments}:
        endpoints = endpoints.filter(environment_id=filters["environment"])
    else:
        filters["environment"] = ""
    if filters["kind"] in Endpoint.Kind.values:
        endpoints = endpoints.filter(kind=filters["kind"])
    else:
        filters["kind"] = ""
    if filters["state"] in State.values:
        endpoints = endpoints.in_state(filters["state"])
    else:
        filters["state"] = ""
    endpoints = list(endpoints)
    busy = Deployment.objects.active().filter(endpoint__in=endpoints).exists()
    waiting = busy or any(endpoint.status in (*TRANSITIONAL, "Pending") for endpoint in endpoints)
    template = "endpoints/endpoint_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#rows"
    context = {
        "endpoints": endpoints,
        "waiting": waiting,
        "any_endpoint": bool(endpoints) or live.exists(),
        "query": query,
        "filters": filters,
        "filtered": bool(query or any(filters.values())),
        "environments": environments,
        "kinds": Endpoint.Kind.choices,
        "states": State.choices,
    }
    full_page = template.endswith(".html")
    if full_page and request.user.role >= Role.DEPLOYER and (local := demo.demo_environment()):
        context["demo_undeployed"] = demo.undeployed(local)
    return render(request, template, context)


@require_safe
@role_required(Role.VIEWER)
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint.objects.select_related("environment"), pk=pk)
    template = "endpoints/endpoint_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#live"
    context = {
        "endpoint": endpoint,
        "deployment": endpoint.deployments.first(),
        "timeline": timeline.lines(endpoint.events.order_by("-at", "-pk")[:TIMELINE_EVENTS]),
        "events_total": endpoint.events.count(),
        "timeline_events": TIMELINE_EVENTS,
        "models": deploy.variant_models(endpoint) if endpoint.spec.get("variants") else [],
        "invoke_url": invoke_url(endpoint),
        "idle_rules": idle.describe(endpoint),
        "idle_form": IdleRulesForm(instance=endpoint),
    }
    response = render(request, template, context)
    if request.htmx and endpoint.is_settled:
        # The poll that sees the endpoint settle reloads the page once: the actions that
        # depend on its status (Update, Open in playground) appear with it.
        response["HX-Refresh"] = "true"
    return response


@require_safe
@role_required(Role.VIEWER)
def endpoint_logs(request: HttpRequest, pk: int) -> HttpResponse:
    """The endpoint's container output (local runtime) or CloudWatch Logs (AWS), loaded on
    demand: a stuck or Failed deployment explains itself here."""
    endpoint = get_object_or_404(Endpoint.objects.select_related("environment"), pk=pk)
    context: dict = {"endpoint": endpoint}
    try:
        context["lines"] = endpoint.environment.backend.endpoint_logs(endpoint.name, limit=300)
    except ProviderError as error:
        context["error"] = error
    return render(request, "endpoints/endpoint_logs.html", context)


def invoke_url(endpoint: Endpoint) -> str:
    from django.conf import settings

    if endpoint.environment.is_local:
        return f"{settings.LOCAL_RUNTIME_URL}/endpoints/{endpoint.name}/invocations"
    region = endpoint.environment.region
    return f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint.name}/invocations"


@require_POST
@role_required(Role.DEPLOYER)
def deploy_demo(request: HttpRequest) -> HttpResponse:
    """One click: one endpoint of each kind from the demo models, on the local runtime."""
    environment = demo.demo_environment()
    if environment is None:
        messages.error(request, "There is no local environment; run `make run` (or load_demo).")
        return redirect("endpoints:list")
    created = demo.deploy_demo(environment, request.user)
    if created:
        names = ", ".join(endpoint.name for endpoint in created)
        messages.success(request, f"Deploying {names}. Each turns InService in a few seconds.")
    else:
        messages.info(request, "The demo endpoints are already there.")
    return redirect("endpoints:list")


@require_POST
@role_required(Role.DEPLOYER)
def set_idle_rules(request: HttpRequest, pk: int) -> HttpResponse:
    """Set or clear the endpoint's expiry time and idle rule; recorded on its timeline."""
    endpoint = get_object_or_404(Endpoint, pk=pk, deleted_at__isnull=True)
    form = IdleRulesForm(request.POST, instance=endpoint)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect("endpoints:detail", pk=endpoint.pk)
    with transaction.atomic():
        endpoint = form.save(commit=False)
        endpoint.idle_warned_at = None
        endpoint.save()
        rules = idle.describe(endpoint)
        endpoint.event(f"Cost rules: {rules}." if rules else "Cost rules removed.")
    messages.success(request, "Cost rules saved.")
    return redirect("endpoints:detail", pk=endpoint.pk)


@require_POST
@role_required(Role.DEPLOYER)
def delete_endpoint(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk, deleted_at__isnull=True)
    if request.POST.get("confirm") != endpoint.name:
        messages.error(request, f"Type the endpoint's name, {endpoint.name}, to delete it.")
        return redirect("endpoints:detail", pk=endpoint.pk)
    if endpoint.deployments.active().filter(action=Deployment.Action.DELETE).exists():
        messages.info(request, f"{endpoint.name} is already being deleted.")
        return redirect("endpoints:detail", pk=endpoint.pk)
    with transaction.atomic():
        deploy.start(endpoint, Deployment.Action.DELETE, request.user)
    messages.success(request, f"Deleting {endpoint.name}. Its configurations and models go too.")
    return redirect("endpoints:detail", pk=endpoint.pk)


@role_required(Role.DEPLOYER)
def model_create(request: HttpRequest) -> HttpResponse:
    """Register a model. "Add a container" re-shows the form with one more row, no script."""
    data = request.POST if request.method == "POST" else None
    form = ModelForm(data, initial={"environment": Environment.objects.first()})
    formset = ContainerFormSet(data, request.FILES or None, prefix="containers")
    if data and "add_container" in data:
        # The typed values again, unbound (no errors before the user submits), plus a row.
        # A tampered row count (not a small number) re-shows one row plus the new one.
        typed = data.get("containers-TOTAL_FORMS", "")
        rows = min(int(typed) if typed.isdecimal() and len(typed) <= 2 else 1, 14) + 1
        fields = ("hostname", "image", "model_data_url", "environment_variables")
        initial = [
            {name: data.get(f"containers-{row}-{name}", "") for name in fields}
            for row in range(rows)
        ]
        form = ModelForm(initial=data.dict())
        formset = ContainerFormSet(initial=initial, prefix="containers")
        return render(request, "endpoints/model_form.html", {"form": form, "formset": formset})
    if data and form.is_valid() and formset.is_valid():
        filled = [f for f in formset.forms if f.cleaned_data.get("image")]
        containers = build_containers(form, filled)
        if not form.errors and not any(f.errors for f in filled):
            return save_model(request, form, filled, containers)
    return render(request, "endpoints/model_form.html", {"form": form, "formset": formset})


def save_model(
    request: HttpRequest, form: ModelForm, container_forms: list, containers: list[dict]
) -> HttpResponse:
    """Upload any archives first (a failed upload saves nothing), then the model."""
    environment = form.cleaned_data["environment"]
    for container_form, container in zip(container_forms, containers, strict=True):
        archive = container_form.cleaned_data.get("archive")
        if archive:
            try:
                environment.backend.upload_object(container["ModelDataUrl"], archive.read())
            except ProviderError as error:
                return render(
                    request,
                    "endpoints/model_form.html",
                    {"form": form, "formset": None, "error": error},
                )
    data = form.cleaned_data
    with transaction.atomic():
        model = RegisteredModel.objects.create(
            environment=environment,
            name=data["name"],
            description=data["description"],
            kind=data["kind"],
            containers=containers,
            inference_mode=data["inference_mode"] if len(containers) > 1 else "",
            execution_role_arn=data["execution_role_arn"],
            subnets=data["subnets"],
            security_groups=data["security_groups"],
            network_isolation=data["network_isolation"],
            created_by=request.user,
        )
    messages.success(request, f"{model.name} is registered. Deploy it when you are ready.")
    return redirect("endpoints:model_detail", pk=model.pk)
