"""The four roles, each allowed everything the one before it may do."""

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse


class Role(models.IntegerChoices):
    """Ordered: a higher role includes every right of the lower ones. The labels are group names."""

    VIEWER = 1, "Viewer"
    ENGINEER = 2, "Engineer"
    DEPLOYER = 3, "Deployer"
    ADMIN = 4, "Admin"


ROLE_DESCRIPTIONS = {
    Role.VIEWER: "Reads model cards, endpoints and charts.",
    Role.ENGINEER: "Also invokes endpoints in the playground.",
    Role.DEPLOYER: "Also registers models, creates, updates and deletes endpoints, approves cards.",
    Role.ADMIN: "Also manages environments and users, and reads the audit log.",
}


def role_required(role: Role) -> Callable:
    """Let the view run only for a signed-in user holding `role` or a higher one; 403 otherwise."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if not request.user.is_authenticated or not request.user.has_role(role):
                raise PermissionDenied(f"This page needs the {role.label} role or higher.")
            return view(request, *args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator
