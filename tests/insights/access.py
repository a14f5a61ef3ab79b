"""Who may use each insights URL (merged into tests/accounts/test_access.py)."""

from django.urls import reverse

from accounts.roles import Role

NOT_ALLOWED = None

ACCESS = {
    "insights:index": (Role.VIEWER, NOT_ALLOWED),
    "insights:endpoint": (Role.VIEWER, NOT_ALLOWED),
    "insights:metrics": (Role.VIEWER, NOT_ALLOWED),
    "insights:cost": (Role.VIEWER, NOT_ALLOWED),
    "insights:records": (Role.VIEWER, NOT_ALLOWED),
    "insights:download": (Role.VIEWER, NOT_ALLOWED),
    "insights:record": (Role.VIEWER, NOT_ALLOWED),
    "insights:start_load_test": (NOT_ALLOWED, Role.ENGINEER),
    "insights:load_test": (Role.VIEWER, NOT_ALLOWED),
    "insights:cancel_load_test": (NOT_ALLOWED, Role.ENGINEER),
}


def url_for(name: str) -> str | None:
    """The URL of `name` when it needs arguments (with a real object), else None."""
    from tests.insights.factories import captured_record, finished_load_test, insights_endpoint

    if name in {"insights:record"}:
        record = captured_record()
        return reverse(name, args=[record.endpoint_id, record.pk])
    if name in {"insights:load_test", "insights:cancel_load_test"}:
        return reverse(name, args=[finished_load_test().pk])
    if name.startswith("insights:") and name != "insights:index":
        return reverse(name, args=[insights_endpoint().pk])
    return None
