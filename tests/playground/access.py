"""Who may use each playground URL (merged into tests/accounts/test_access.py)."""

from django.urls import reverse

from accounts.roles import Role

NOT_ALLOWED = None

ACCESS = {
    "playground:index": (Role.ENGINEER, NOT_ALLOWED),
    "playground:invoke": (NOT_ALLOWED, Role.ENGINEER),
    "playground:stream": (NOT_ALLOWED, Role.ENGINEER),
    "playground:history": (Role.ENGINEER, NOT_ALLOWED),
    "playground:compare": (Role.ENGINEER, Role.ENGINEER),
    "playground:compare_targets": (Role.ENGINEER, NOT_ALLOWED),
    "playground:invocation": (Role.ENGINEER, NOT_ALLOWED),
    "playground:result": (Role.ENGINEER, NOT_ALLOWED),
    "playground:body": (Role.ENGINEER, NOT_ALLOWED),
    "playground:rerun": (NOT_ALLOWED, Role.ENGINEER),
    "playground:pin": (NOT_ALLOWED, Role.ENGINEER),
    "playground:unpin": (NOT_ALLOWED, Role.ENGINEER),
}


def url_for(name: str) -> str | None:
    """The URL of `name` when it needs arguments (with a real object), else None."""
    from tests.playground.factories import invocation, pinned_example

    if name in {"playground:invocation", "playground:result", "playground:rerun", "playground:pin"}:
        return reverse(name, args=[invocation().pk])
    if name == "playground:body":
        return reverse(name, args=[invocation().pk, "response"])
    if name == "playground:unpin":
        return reverse(name, args=[pinned_example().pk])
    return None
