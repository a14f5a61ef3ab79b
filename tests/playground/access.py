"""Who may use each playground URL (merged into tests/accounts/test_access.py)."""

from accounts.roles import Role

NOT_ALLOWED = None

ACCESS = {
    "playground:index": (Role.ENGINEER, NOT_ALLOWED),
}


def url_for(name: str) -> str | None:
    """The URL of `name` when it needs arguments (with a real object), else None."""
    return None
