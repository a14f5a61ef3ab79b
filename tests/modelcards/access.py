"""Who may use each model-card URL (merged into tests/accounts/test_access.py)."""

from django.urls import reverse

from accounts.roles import Role

NOT_ALLOWED = None

ACCESS = {
    "modelcards:list": (Role.VIEWER, NOT_ALLOWED),
    "modelcards:create": (Role.ENGINEER, Role.ENGINEER),
    "modelcards:import": (Role.ENGINEER, Role.ENGINEER),
    "modelcards:detail": (Role.VIEWER, NOT_ALLOWED),
    "modelcards:view": (Role.VIEWER, NOT_ALLOWED),
    "modelcards:diff": (Role.VIEWER, NOT_ALLOWED),
    "modelcards:export": (Role.VIEWER, NOT_ALLOWED),
    "modelcards:edit": (Role.ENGINEER, Role.ENGINEER),
    "modelcards:status": (NOT_ALLOWED, Role.ENGINEER),
    "modelcards:link_models": (NOT_ALLOWED, Role.ENGINEER),
    "modelcards:publish": (NOT_ALLOWED, Role.DEPLOYER),
}


def url_for(name: str) -> str | None:
    """The URL of `name` when it needs arguments (with a real object), else None."""
    if name not in ACCESS or name in {"modelcards:list", "modelcards:create", "modelcards:import"}:
        return None
    from modelcards import workflow
    from tests.factories import UserFactory

    writer = UserFactory(role=Role.ENGINEER)
    content = {"model_overview": {"model_name": "Churn"}, "intended_uses": {"risk_rating": "Low"}}
    card = workflow.create_card("churn", content, writer)
    if name == "modelcards:edit":
        return reverse(name, args=[card.pk, "intended_uses"])
    if name == "modelcards:export":
        return reverse(name, args=[card.pk, "json"])
    return reverse(name, args=[card.pk])
