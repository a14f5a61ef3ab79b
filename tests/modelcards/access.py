"""Who may use each model-card URL (merged into tests/accounts/test_access.py)."""

from accounts.roles import Role

NOT_ALLOWED = None

ACCESS = {
    "modelcards:list": (Role.VIEWER, NOT_ALLOWED),
}


def url_for(name: str) -> str | None:
    """The URL of `name` when it needs arguments (with a real object), else None."""
    return None
