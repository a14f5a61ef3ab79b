"""No secret in pages, the audit log or logs (S6): SECRET_KEY, passwords, AWS keys."""

import json
import logging

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from moto import mock_aws

from accounts.models import User
from audit.models import AuditEntry
from environments.models import Environment
from portal.management import backups
from tests.factories import PASSWORD, EnvironmentFactory

pytestmark = pytest.mark.security

# Made-up values shaped like the real thing, so a leak would look like one.
ACCESS_KEY = "AKIAZZSECRETKEYID123"  # pragma: allowlist secret
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz"  # pragma: allowlist secret
NEW_PASSWORD = "marmalade lighthouse 2031"  # pragma: allowlist secret


class PortalLogs:
    """Every record the configured loggers let through, from DEBUG up, except factory_boy's
    (the tests' own factories log the test password they set)."""

    def __init__(self, caplog: pytest.LogCaptureFixture):
        self.caplog = caplog

    @property
    def text(self) -> str:
        return "\n".join(
            f"{record.name} {record.getMessage()} {record.args!r}"
            for record in self.caplog.records
            if not record.name.startswith("factory")
        )


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> PortalLogs:
    caplog.set_level(logging.DEBUG)
    return PortalLogs(caplog)


def audit_text() -> str:
    return json.dumps([entry.changes for entry in AuditEntry.objects.all()], ensure_ascii=False)


def database_text() -> str:
    return json.dumps(backups.canonical_dump(), default=str, ensure_ascii=False)


def pages_for(client: Client) -> str:
    """Every page an Admin can open about environments, users and the audit log."""
    urls = [reverse("home"), reverse("environments:list"), reverse("environments:create")]
    for environment in Environment.objects.all():
        urls += [
            reverse("environments:detail", args=[environment.pk]),
            reverse("environments:update", args=[environment.pk]),
        ]
    urls += [reverse("accounts:user_list"), reverse("audit:list")]
    urls += [reverse("accounts:user_update", args=[user.pk]) for user in User.objects.all()]
    html = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        html.append(response.content.decode())
    return "\n".join(html)


def assert_nowhere(secret: str, *places: str) -> None:
    for place in places:
        assert secret not in place


def test_secret_key_never_reaches_a_page_or_the_logs(client_for, logs) -> None:
    admin = client_for("admin")
    EnvironmentFactory()

    html = pages_for(admin)

    assert_nowhere(settings.SECRET_KEY, html, logs.text, audit_text())


def test_aws_keys_posted_with_an_environment_are_kept_nowhere(client_for, logs) -> None:
    admin = client_for("admin")

    response = admin.post(
        reverse("environments:create"),
        {
            "name": "prod-eu",
            "kind": "aws",
            "region": "eu-west-1",
            "bucket": "acme-ml",
            "prefix": "portal/",
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
        },
    )

    assert response.status_code == 302
    html = pages_for(admin)
    for secret in (ACCESS_KEY, SECRET_ACCESS_KEY):
        assert_nowhere(secret, html, audit_text(), database_text(), logs.text)


def test_testing_an_aws_connection_shows_no_credentials_of_the_machine(
    client_for, logs, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    environment = EnvironmentFactory(
        name="prod-us",
        kind=Environment.Kind.AWS,
        region="us-east-1",
        assume_role_arn="arn:aws:iam::123456789012:role/PortalAccess",
        external_id="shared-external-id-77",
    )
    admin = client_for("admin")

    with mock_aws():
        answer = admin.post(reverse("environments:test_connection", args=[environment.pk]))

    assert answer.status_code == 200
    html = answer.content.decode() + pages_for(admin)
    for secret in (ACCESS_KEY, SECRET_ACCESS_KEY):
        assert_nowhere(secret, html, audit_text(), database_text(), logs.text)


def test_a_one_time_password_is_shown_once_and_kept_only_as_a_hash(client_for, logs) -> None:
    admin = client_for("admin")

    shown = admin.post(
        reverse("accounts:user_create"),
        {"username": "newcomer", "first_name": "", "last_name": "", "email": "", "role": 1},
    )

    password = shown.context["password"]
    assert password in shown.content.decode()
    newcomer = User.objects.get(username="newcomer")
    assert newcomer.check_password(password)
    assert_nowhere(password, pages_for(admin), audit_text(), database_text(), logs.text)


def test_a_new_password_is_in_no_page_audit_entry_or_log(client, user_for, logs) -> None:
    user = user_for("admin")
    client.post(reverse("accounts:login"), {"username": user.username, "password": PASSWORD})

    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    html = response.content.decode() + pages_for(client)
    for secret in (NEW_PASSWORD, PASSWORD, user.password):
        assert_nowhere(secret, html, audit_text(), logs.text)
    assert "(changed)" in audit_text()


def test_wrong_passwords_are_not_logged_even_at_a_lockout(client, user_for, logs) -> None:
    user = user_for("viewer")

    for attempt in range(6):
        client.post(
            reverse("accounts:login"),
            {"username": user.username, "password": f"guess number {attempt} xyz"},
        )

    assert "sign-in locked" in logs.text
    assert "guess number" not in logs.text
