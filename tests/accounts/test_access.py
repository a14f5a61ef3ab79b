"""Every URL, with every role, GET and POST: allowed or refused exactly as this table declares.

A new URL fails `test_every_url_is_declared` until it is added here, so no page ships without
a decision on who may use it.
"""

from importlib import import_module

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.roles import Role
from endpoints.models import Endpoint, RegisteredModel
from tests.factories import EnvironmentFactory, UserFactory

PUBLIC = 0  # anyone, signed in or not
SIGNED_IN = 0.5  # any signed-in user, even one without a role
NOT_ALLOWED = None  # the method is refused (405) for everyone who gets past sign-in

# url name: (who may GET, who may POST)
ACCESS = {
    "home": (Role.VIEWER, NOT_ALLOWED),
    "healthz": (PUBLIC, NOT_ALLOWED),
    "accounts:login": (PUBLIC, PUBLIC),
    "accounts:logout": (NOT_ALLOWED, SIGNED_IN),
    "accounts:password_change": (SIGNED_IN, SIGNED_IN),
    "accounts:user_list": (Role.ADMIN, NOT_ALLOWED),
    "accounts:user_create": (Role.ADMIN, Role.ADMIN),
    "accounts:user_update": (Role.ADMIN, Role.ADMIN),
    "accounts:user_reset_password": (NOT_ALLOWED, Role.ADMIN),
    "audit:list": (Role.ADMIN, NOT_ALLOWED),
    "alerts:list": (Role.DEPLOYER, NOT_ALLOWED),
    "alerts:test": (NOT_ALLOWED, Role.ADMIN),
    "environments:list": (Role.VIEWER, NOT_ALLOWED),
    "environments:detail": (Role.VIEWER, NOT_ALLOWED),
    "environments:create": (Role.ADMIN, Role.ADMIN),
    "environments:update": (Role.ADMIN, Role.ADMIN),
    "environments:test_connection": (NOT_ALLOWED, Role.ADMIN),
    "endpoints:list": (Role.VIEWER, NOT_ALLOWED),
    "endpoints:detail": (Role.VIEWER, NOT_ALLOWED),
    "endpoints:logs": (Role.VIEWER, NOT_ALLOWED),
    "endpoints:idle_rules": (NOT_ALLOWED, Role.DEPLOYER),
    "endpoints:delete": (NOT_ALLOWED, Role.DEPLOYER),
    "endpoints:deploy_demo": (NOT_ALLOWED, Role.DEPLOYER),
    "endpoints:create": (Role.DEPLOYER, Role.DEPLOYER),
    "endpoints:wizard_step": (Role.DEPLOYER, Role.DEPLOYER),
    "endpoints:update": (Role.DEPLOYER, Role.DEPLOYER),
    "endpoints:export": (Role.DEPLOYER, NOT_ALLOWED),
    "endpoints:import": (Role.DEPLOYER, Role.DEPLOYER),
    "endpoints:model_list": (Role.VIEWER, NOT_ALLOWED),
    "endpoints:model_detail": (Role.VIEWER, NOT_ALLOWED),
    "endpoints:model_create": (Role.DEPLOYER, Role.DEPLOYER),
}

# Apps built later declare their own URLs beside their tests: `tests/<app>/access.py` holds an
# ACCESS dict in the same form and, for URLs that take arguments, `url_for(name) -> str | None`.
APP_TABLES = [
    import_module(f"tests.{app}.access") for app in ("modelcards", "playground", "insights")
]
for table in APP_TABLES:
    ACCESS |= table.ACCESS

WHO = {"anon": None, "none": None, "viewer": Role.VIEWER, "engineer": Role.ENGINEER}
WHO |= {"deployer": Role.DEPLOYER, "admin": Role.ADMIN}


def url_names(resolver: URLResolver, namespace: str = "") -> set[str]:
    names = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}{pattern.name}")
    return names


def test_every_url_is_declared() -> None:
    assert url_names(get_resolver()) == set(ACCESS)


def url_for(name: str) -> str:
    """The URL of `name`, with a real object for the ones that take a primary key."""
    for table in APP_TABLES:
        if hasattr(table, "url_for") and (url := table.url_for(name)):
            return url
    if name in {"accounts:user_update", "accounts:user_reset_password"}:
        return reverse(name, args=[UserFactory(role=Role.VIEWER).pk])
    if name in {"environments:detail", "environments:update", "environments:test_connection"}:
        return reverse(name, args=[EnvironmentFactory().pk])
    if name == "endpoints:wizard_step":
        return reverse(name, args=["basics"])
    if name == "endpoints:model_detail":
        return reverse(name, args=[model().pk])
    if name in {
        "endpoints:detail",
        "endpoints:delete",
        "endpoints:update",
        "endpoints:logs",
        "endpoints:idle_rules",
    }:
        endpoint = Endpoint.objects.create(
            environment=EnvironmentFactory(), name="iris", spec={"variants": []}
        )
        return reverse(name, args=[endpoint.pk])
    return reverse(name)


def model() -> RegisteredModel:
    return RegisteredModel.objects.create(
        environment=EnvironmentFactory(), name="iris", containers=[{"Image": "sklearn"}]
    )


def may(who: str, rule: float | Role | None) -> bool:
    if rule == PUBLIC:
        return True
    if rule == SIGNED_IN:
        return who != "anon"
    role = WHO[who]
    return role is not None and role >= rule


@pytest.mark.parametrize("who", list(WHO))
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("name", sorted(ACCESS))
def test_url_answers_each_role_as_declared(client_for, name: str, method: str, who: str) -> None:
    rule = ACCESS[name][0 if method == "get" else 1]
    client = client_for(who)
    url = url_for(name)

    response = getattr(client, method)(url)

    login_url = reverse("accounts:login")
    sent_to_login = response.status_code == 302 and response["Location"].startswith(login_url)
    if rule is NOT_ALLOWED:
        if who == "anon" and ACCESS[name] != (PUBLIC, NOT_ALLOWED) and name != "accounts:login":
            assert sent_to_login, response.status_code
        else:
            assert response.status_code == 405
    elif may(who, rule):
        assert response.status_code not in {401, 403, 405}
        assert not sent_to_login or name == "accounts:logout"
    elif who == "anon":
        assert sent_to_login
    else:
        assert response.status_code == 403


def test_htmx_request_without_session_gets_401_and_a_redirect_header(client) -> None:
    response = client.get(reverse("endpoints:list"), headers={"HX-Request": "true"})

    assert response.status_code == 401
    assert response["HX-Redirect"].startswith(reverse("accounts:login") + "?next=")


def test_user_without_role_is_told_to_ask_an_admin(client_for) -> None:
    response = client_for("none").get(reverse("home"))

    assert response.status_code == 403
    assert b"Your account has no role yet" in response.content


def test_locked_account_has_no_role_and_no_access(user_for, client) -> None:
    account = user_for("admin", is_active=False)

    assert account.role is None
    assert not client.login(username=account.username, password="a long test password 42")
