"""The navigation a signed-in user may use, for base.html."""

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from accounts.roles import Role

NAVIGATION = [
    ("Environments", "environments:list", Role.VIEWER),
    ("Models", "endpoints:model_list", Role.VIEWER),
    ("Endpoints", "endpoints:list", Role.VIEWER),
    ("Model cards", "modelcards:list", Role.VIEWER),
    ("Playground", "playground:index", Role.ENGINEER),
    ("Insights", "insights:index", Role.VIEWER),
    ("Users", "accounts:user_list", Role.ADMIN),
    ("Audit log", "audit:list", Role.ADMIN),
]


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    role: Role
    current: bool


def navigation(request: HttpRequest) -> dict:
    """Only the sections the user's role may open: a link that would answer 403 is not offered.

    The current section is the one whose URL is the longest prefix of the requested path.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"navigation": []}
    allowed = [
        (label, reverse(name), role) for label, name, role in NAVIGATION if user.has_role(role)
    ]
    matches = [url for _, url, _ in allowed if request.path.startswith(url)]
    current = max(matches, key=len) if matches else None
    return {
        "navigation": [NavItem(label, url, role, url == current) for label, url, role in allowed]
    }
