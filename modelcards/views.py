"""Model cards: everyone reads them; Engineers write them; Deployers approve and archive them."""

import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST, require_safe

from accounts.roles import Role, role_required
from environments.backends.base import ProviderError
from modelcards import diff, exporters, workflow
from modelcards.charts import evaluation_charts
from modelcards.forms import (
    SECTION_FORMS,
    CardCreateForm,
    EvaluationFormSet,
    ImportForm,
    LinkModelsForm,
    NoteForm,
    PublishForm,
    TransitionForm,
)
from modelcards.models import RISK_RATINGS, CardVersion, ModelCard, Status
from modelcards.sections import SECTION_KEYS, SECTIONS, get_path, section, to_display


@require_safe
@role_required(Role.VIEWER)
def card_list(request: HttpRequest) -> HttpResponse:
    cards = ModelCard.objects.select_related("owner").prefetch_related("registered_models")
    query = request.GET.get("q", "").strip()
    filters = {key: request.GET.get(key, "") for key in ("status", "risk", "owner")}
    if query:
        cards = cards.filter(
            Q(name__icontains=query)
            | Q(title__icontains=query)
            | Q(registered_models__name__icontains=query)
        ).distinct()
    if filters["status"] in Status.values:
        cards = cards.filter(status=filters["status"])
    if filters["risk"] in RISK_RATINGS:
        cards = cards.filter(risk_rating=filters["risk"])
    if filters["owner"]:
        cards = cards.filter(owner__username=filters["owner"])
    owners = (
        ModelCard.objects.exclude(owner=None)
        .order_by("owner__username")
        .values_list("owner__username", flat=True)
        .distinct()
    )
    page = Paginator(cards, 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "query": query,
        "filters": filters,
        "filtered": bool(query or any(filters.values())),
        "statuses": Status.choices,
        "risks": RISK_RATINGS,
        "owners": owners,
    }
    params = request.GET.copy()
    params.pop("page", None)
    context["paging_query"] = params.urlencode()
    return render(request, "modelcards/card_list.html", context)


@role_required(Role.ENGINEER)
def create_card(request: HttpRequest) -> HttpResponse:
    form = CardCreateForm(request.POST or None, initial={"models": request.GET.getlist("model")})
    if request.method == "POST" and form.is_valid():
        content = {
            "model_overview": {"model_name": form.cleaned_data["model_name"].strip()},
            "intended_uses": {"risk_rating": "Unknown"},
        }
        card = workflow.create_card(
            form.cleaned_data["name"], content, request.user, form.cleaned_data["models"]
        )
        messages.success(request, f"{card.name} is created as a draft. Fill in each section.")
        return redirect("modelcards:edit", pk=card.pk, key="model_overview")
    return render(request, "modelcards/card_create.html", {"form": form})


@require_safe
@role_required(Role.VIEWER)
def card_detail(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(ModelCard.objects.select_related("owner"), pk=pk)
    versions = list(card.versions.select_related("created_by", "approved_by"))
    latest = versions[0]
    context = {
        "card": card,
        "latest": latest,
        "versions": versions,
        "transitions": card.transitions.select_related("by", "version")[:50],
        "publications": card.publications.select_related("environment", "version", "by")[:20],
        "actions": workflow.allowed_transitions(card, request.user),
        "linked": card.registered_models.select_related("environment"),
        "link_form": LinkModelsForm(initial={"models": card.registered_models.all()}),
        "publish_form": PublishForm(),
        "sections": section_progress(latest.content),
        "can_write": request.user.has_role(Role.ENGINEER),
        "can_publish": request.user.has_role(Role.DEPLOYER),
    }
    return render(request, "modelcards/card_detail.html", context)


def section_progress(content: dict) -> list[dict]:
    """Each section with how many of its fields are filled, for the writer's checklist."""
    progress = []
    for item in SECTIONS:
        if item.key == "evaluation_details":
            filled, total = len(content.get("evaluation_details", [])), None
        else:
            filled = sum(
                1
                for field in item.fields
                if get_path(content, field.path) not in (None, "", [], {})
            )
            total = len(item.fields)
        progress.append({"section": item, "filled": filled, "total": total})
    return progress


@role_required(Role.ENGINEER)
def edit_section(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    card = get_object_or_404(ModelCard, pk=pk)
    if key not in SECTION_KEYS:
        raise Http404("No such section.")
    if not card.is_editable:
        messages.error(request, workflow.edit_refusal(card))
        return redirect("modelcards:detail", pk=card.pk)
    latest = card.latest
    if key == "evaluation_details":
        form = EvaluationFormSet(request.POST or None, content=latest.content, prefix="evaluations")
        note_form = NoteForm(request.POST or None)
    else:
        form = SECTION_FORMS[key](request.POST or None, content=latest.content)
        note_form = None
    if request.method == "POST" and form.is_valid() and (note_form is None or note_form.is_valid()):
        note = (note_form or form).cleaned_data.get("note", "") or f"{section(key).title} edited."
        if form.updated == latest.content:
            messages.info(request, "Nothing changed, so no new version was saved.")
        else:
            try:
                version = workflow.save_version(card, form.updated, request.user, note=note)
            except ValidationError as error:
                messages.error(request, error.messages[0])
                return redirect("modelcards:detail", pk=card.pk)
            messages.success(request, f"Saved as version {version.number}.")
        following = next_section(key)
        if "continue" in request.POST and following:
            return redirect("modelcards:edit", pk=card.pk, key=following)
        return redirect("modelcards:edit", pk=card.pk, key=key)
    context = {
        "card": card,
        "latest": latest,
        "current": section(key),
        "form": form,
        "note_form": note_form,
        "sections": section_progress(latest.content),
        "next_section": next_section(key),
    }
    return render(request, "modelcards/card_edit.html", context)


def next_section(key: str) -> str | None:
    index = SECTION_KEYS.index(key)
    return SECTION_KEYS[index + 1] if index + 1 < len(SECTION_KEYS) else None


@require_POST
@role_required(Role.ENGINEER)
def change_status(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(ModelCard, pk=pk)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a status to move the card to.")
        return redirect("modelcards:detail", pk=card.pk)
    to_status = form.cleaned_data["to_status"]
    try:
        workflow.transition(card, to_status, request.user, form.cleaned_data["comment"])
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"{card.name} is now {Status(to_status).label.lower()}.")
    return redirect("modelcards:detail", pk=card.pk)


@require_POST
@role_required(Role.ENGINEER)
def link_models(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(ModelCard, pk=pk)
    form = LinkModelsForm(request.POST)
    if card.is_archived:
        messages.error(request, workflow.edit_refusal(card))
    elif form.is_valid():
        workflow.link_models(card, form.cleaned_data["models"])
        messages.success(request, "The models this card describes are saved.")
    else:
        messages.error(request, "One of those models no longer exists; reload and try again.")
    return redirect("modelcards:detail", pk=card.pk)


@require_POST
@role_required(Role.DEPLOYER)
def publish_card(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(ModelCard, pk=pk)
    form = PublishForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an AWS environment to publish to.")
        return redirect("modelcards:detail", pk=card.pk)
    environment = form.cleaned_data["environment"]
    try:
        publication = workflow.publish(card, environment, request.user)
    except ProviderError as error:
        messages.error(request, f"SageMaker refused the card: {error.message}")
    else:
        messages.success(
            request, f"Published version {publication.version.number} to {environment.name}."
        )
    return redirect("modelcards:detail", pk=card.pk)


def version_of(card: ModelCard, request: HttpRequest, default: CardVersion | None) -> CardVersion:
    number = request.GET.get("version")
    if number is None:
        if default is None:
            raise Http404("This card has no version.")
        return default
    if not (number.isdecimal() and len(number) <= 18):  # isdigit() passes "²"; int() does not
        raise Http404("No such version.")
    return get_object_or_404(CardVersion, card=card, number=int(number))


@require_safe
@role_required(Role.VIEWER)
def stakeholder_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The card for readers: the approved version unless another is asked for."""
    card = get_object_or_404(ModelCard, pk=pk)
    latest = card.latest
    version = version_of(card, request, card.approved_version or latest)
    content = version.content
    context = {
        "card": card,
        "version": version,
        "content": content,
        "is_latest": version.number == latest.number,
        "latest": latest,
        "facts": overview_facts(content),
        "charts": evaluation_charts(content),
        "linked": card.registered_models.select_related("environment"),
        "training": [
            (field.label, to_display(field, get_path(content, field.path)), field.kind)
            for field in section("training_details").fields
            if get_path(content, field.path) not in (None, "", [], {})
        ],
    }
    return render(request, "modelcards/card_view.html", context)


def overview_facts(content: dict) -> list[tuple[str, str]]:
    facts = []
    for field in section("model_overview").fields:
        value = get_path(content, field.path)
        if field.kind != "markdown" and field.path != "model_overview.model_name" and value:
            facts.append((field.label, to_display(field, value)))
    return facts


@require_safe
@role_required(Role.VIEWER)
def version_diff(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(ModelCard, pk=pk)
    numbers = list(card.versions.values_list("number", flat=True))
    newest = max(numbers)
    try:
        old_number = int(request.GET.get("from", max(newest - 1, 1)))
        new_number = int(request.GET.get("to", newest))
    except ValueError:
        raise Http404("Versions are numbers.") from None
    old = get_object_or_404(CardVersion, card=card, number=old_number)
    new = get_object_or_404(CardVersion, card=card, number=new_number)
    context = {
        "card": card,
        "old": old,
        "new": new,
        "numbers": sorted(numbers, reverse=True),
        "changes": diff.compare(old.content, new.content),
    }
    return render(request, "modelcards/card_diff.html", context)


EXPORTS = {
    "json": ("application/json", "json"),
    "markdown": ("text/markdown; charset=utf-8", "md"),
    "pdf": ("application/pdf", "pdf"),
}


@require_safe
@role_required(Role.VIEWER)
def export_card(request: HttpRequest, pk: int, format: str) -> HttpResponse:
    card = get_object_or_404(ModelCard, pk=pk)
    if format not in EXPORTS:
        raise Http404("Export as json, markdown or pdf.")
    version = version_of(card, request, card.latest)
    try:
        if format == "json":
            body: str | bytes = exporters.export_json(version)
        elif format == "markdown":
            body = exporters.export_hugging_face(version)
        else:
            body = exporters.export_pdf(version)
    except exporters.CardFileError as error:
        problems = "; ".join(map(str, error.problems))
        messages.error(request, f"{error.message} Fix it first: {problems}")
        return redirect("modelcards:detail", pk=card.pk)
    content_type, extension = EXPORTS[format]
    response = HttpResponse(body, content_type=content_type)
    filename = "README.md" if format == "markdown" else f"{card.name}-v{version.number}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@role_required(Role.ENGINEER)
def import_card(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    problems: list = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            content = exporters.import_file(upload.name, upload.read())
        except exporters.CardFileError as error:
            form.add_error("file", error.message)
            problems = error.problems
        else:
            name = form.cleaned_data["name"] or unique_name(content, upload.name)
            try:
                with transaction.atomic():
                    card = workflow.create_card(
                        name, content, request.user, note=f"Imported from {upload.name[:150]}."
                    )
            except ValidationError as error:
                form.add_error("name", error.messages[0])
            else:
                messages.success(request, f"Imported {upload.name} as {card.name}, a draft.")
                return redirect("modelcards:detail", pk=card.pk)
    return render(request, "modelcards/card_import.html", {"form": form, "problems": problems})


def unique_name(content: dict, filename: str) -> str:
    base = get_path(content, "model_overview.model_name") or filename.rsplit(".", 1)[0]
    base = re.sub(r"-+", "-", slugify(str(base))).strip("-")[:55] or "imported-card"
    name, counter = base, 2
    while ModelCard.objects.filter(name__iexact=name).exists():
        name, counter = f"{base}-{counter}", counter + 1
    return name
