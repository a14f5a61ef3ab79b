"""Writing cards: saving versions, moving a card through review, publishing it to SageMaker.

Draft -> PendingReview -> Approved -> Archived, with a way back from review to draft. Every save
is a new version; every status change is a Transition row, written in the same transaction.
"""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.roles import Role
from alerts import delivery as alerts
from endpoints.models import RegisteredModel
from environments.models import Environment
from modelcards.models import CardModel, CardVersion, ModelCard, Publication, Status, Transition

# (from, to): (the role it needs, the button's words)
TRANSITIONS = {
    (Status.DRAFT, Status.PENDING_REVIEW): (Role.ENGINEER, "Submit for review"),
    (Status.PENDING_REVIEW, Status.DRAFT): (Role.ENGINEER, "Return to draft"),
    (Status.PENDING_REVIEW, Status.APPROVED): (Role.DEPLOYER, "Approve"),
    (Status.DRAFT, Status.ARCHIVED): (Role.DEPLOYER, "Archive"),
    (Status.PENDING_REVIEW, Status.ARCHIVED): (Role.DEPLOYER, "Archive"),
    (Status.APPROVED, Status.ARCHIVED): (Role.DEPLOYER, "Archive"),
}


def allowed_transitions(card: ModelCard, user: object) -> list[tuple[str, str]]:
    """(target status, button label) for each move this user may make on the card now."""
    return [
        (target, label)
        for (source, target), (role, label) in TRANSITIONS.items()
        if source == card.status and user.has_role(role)
    ]


def create_card(
    name: str, content: dict, user: object, models: Iterable = (), note: str = ""
) -> ModelCard:
    """A new card with its first version, all or nothing."""
    with transaction.atomic():
        card = ModelCard(name=name, owner=user if user.is_authenticated else None)
        card.full_clean()
        card.save()
        link_models(card, models)
        save_version(card, content, user, note=note or "Created.")
    return card


def save_version(card: ModelCard, content: dict, user: object, note: str = "") -> CardVersion:
    """Store `content` as the card's next version. An approved card goes back to Draft with it
    (its approved version stays as it was); a card under review or archived refuses."""
    with transaction.atomic():
        card = ModelCard.objects.select_for_update().get(pk=card.pk)
        if not card.is_editable and card.versions.exists():
            raise ValidationError(edit_refusal(card))
        last = card.versions.aggregate(last=Max("number"))["last"] or 0
        version = CardVersion.objects.create(
            card=card,
            number=last + 1,
            content=content,
            note=note[:200],
            created_by=user if user.is_authenticated else None,
        )
        if card.status == Status.APPROVED:
            record(card, version, Status.DRAFT, user, f"Version {version.number} started.")
        card.title = version.content.get("model_overview", {}).get("model_name", "")[:1024]
        card.risk_rating = version.risk_rating
        card.save(update_fields=["title", "risk_rating", "status", "updated_at"])
    return version


def edit_refusal(card: ModelCard) -> str:
    if card.status == Status.PENDING_REVIEW:
        return f"{card.name} is waiting for review; return it to draft to edit it."
    return f"{card.name} is archived and read-only."


def transition(card: ModelCard, to_status: str, user: object, comment: str = "") -> Transition:
    """Move the card to `to_status`, if its workflow and the user's role allow it."""
    with transaction.atomic():
        card = ModelCard.objects.select_for_update().get(pk=card.pk)
        rule = TRANSITIONS.get((card.status, to_status))
        if rule is None:
            current, wanted = Status(card.status).label, Status(to_status).label
            raise ValidationError(f"A card that is {current.lower()} cannot become {wanted}.")
        if not user.has_role(rule[0]):
            raise PermissionDenied(f"Only a {rule[0].label} or higher may {rule[1].lower()}.")
        version = card.latest
        if to_status == Status.APPROVED:
            CardVersion.objects.filter(pk=version.pk).update(
                approved_at=timezone.now(), approved_by=user
            )
        entry = record(card, version, to_status, user, comment)
        alerts.card_moved(card, to_status, user, comment)
        return entry


def record(
    card: ModelCard, version: CardVersion, to_status: str, user: object, comment: str
) -> Transition:
    entry = Transition.objects.create(
        card=card,
        version=version,
        from_status=card.status,
        to_status=to_status,
        comment=comment.strip(),
        by=user if user.is_authenticated else None,
    )
    card.status = to_status
    card.save(update_fields=["status", "updated_at"])
    return entry


def link_models(card: ModelCard, models: Iterable[RegisteredModel]) -> None:
    """Make the card describe exactly these models."""
    wanted = {model.pk for model in models}
    with transaction.atomic():
        CardModel.objects.filter(card=card).exclude(model_id__in=wanted).delete()
        have = set(CardModel.objects.filter(card=card).values_list("model_id", flat=True))
        for model_id in sorted(wanted - have):
            CardModel.objects.create(card=card, model_id=model_id)


def publish(card: ModelCard, environment: Environment, user: object) -> Publication:
    """Send the card's latest version and status to SageMaker in an AWS environment (through
    the backend: CreateModelCard, or UpdateModelCard for what changed) and record it."""
    version = card.latest
    arn = environment.backend.create_or_update_model_card(card.name, version.content, card.status)
    return Publication.objects.create(
        card=card,
        version=version,
        environment=environment,
        status=card.status,
        arn=arn,
        by=user if user.is_authenticated else None,
    )


def models_without_approved_card(models: Iterable[RegisteredModel]) -> list[RegisteredModel]:
    """The models no approved (and not archived) card describes."""
    models = list(models)
    covered = set(
        CardModel.objects.filter(
            model__in=models, card__in=ModelCard.objects.approved()
        ).values_list("model_id", flat=True)
    )
    return [model for model in models if model.pk not in covered]
