"""The navigation a signed-in user may use, for base.html."""

from dataclasses import dataclass
from typing import NamedTuple

from django.http import HttpRequest
from django.urls import reverse

from accounts.roles import Role


class Section(NamedTuple):
    """A section of the portal: its label, URL name, the role it needs and, for the home page's
    tiles, what it is for."""

    label: str
    url_name: str
    role: Role
    description: str


NAVIGATION = [
    Section("Environments", "environments:list", Role.VIEWER,
            "Where endpoints run: the local runtime or an AWS account and region."),
    Section("Models", "endpoints:model_list", Role.VIEWER,
            "Serving containers and artifacts registered for deployment."),
    Section("Endpoints", "endpoints:list", Role.VIEWER,
            "Real-time, async and serverless endpoints and their status."),
    Section("Model cards", "modelcards:list", Role.VIEWER,
            "What each model is for, how it was trained and evaluated."),
    Section("Playground", "playground:index", Role.ENGINEER,
            "Invoke an endpoint by target name and compare answers."),
    Section("Insights", "insights:index", Role.VIEWER,
            "Captured traffic, latency, errors, scaling and cost."),
    Section("Alerts", "alerts:list", Role.DEPLOYER,
            "Where the team hears of endpoints that fail and recover."),
    Section("Users", "accounts:user_list", Role.ADMIN, "Accounts, their roles and sign-in state."),
    Section("Audit log", "audit:list", Role.ADMIN, "Who changed what, and when."),
]  # fmt: skip


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    role: Role
    current: bool
    description: str = ""


def navigation(request: HttpRequest) -> dict:
    """Only the sections the user's role may open: a link that would answer 403 is not offered.

    The current section is the one whose URL is the longest prefix of the requested path.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"navigation": []}
    allowed = [
        (section, reverse(section.url_name))
        for section in NAVIGATION
        if user.has_role(section.role)
    ]
    matches = [url for _, url in allowed if request.path.startswith(url)]
    current = max(matches, key=len) if matches else None
    return {
        "navigation": [
            NavItem(section.label, url, section.role, url == current, section.description)
            for section, url in allowed
        ]
    }
