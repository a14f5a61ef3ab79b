"""The audit log is append-only for everyone, Admins and superusers included (D2)."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.db import transaction
from django.urls import reverse

from audit.models import AppendOnlyError, AuditEntry
from tests.factories import EnvironmentFactory, UserFactory

pytestmark = pytest.mark.security


@pytest.fixture
def entry(db) -> AuditEntry:
    EnvironmentFactory(name="recorded")
    return AuditEntry.objects.get(object_repr="recorded")


def test_no_code_path_changes_or_deletes_an_entry(entry) -> None:
    entry.actor_name = "someone else"
    attempts = [
        entry.save,
        entry.delete,
        AuditEntry.objects.all().delete,
        lambda: AuditEntry.objects.update(actor_name="x"),
        lambda: AuditEntry.objects.bulk_update([entry], ["actor_name"]),
        AuditEntry._base_manager.all().delete,
        lambda: AuditEntry._base_manager.filter(pk=entry.pk).update(actor_name="x"),
    ]

    for attempt in attempts:
        with pytest.raises(AppendOnlyError), transaction.atomic():
            attempt()

    entry.refresh_from_db()
    assert entry.actor_name == "system"


def test_no_one_can_be_granted_change_or_delete_on_audit_entries(entry) -> None:
    codenames = set(
        Permission.objects.filter(content_type__app_label="audit").values_list(
            "codename", flat=True
        )
    )

    assert codenames == {"add_auditentry", "view_auditentry"}


def test_a_superuser_admin_has_no_admin_site_or_page_that_edits_entries(client, entry) -> None:
    superuser = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(superuser)

    if apps.is_installed("django.contrib.admin"):  # should anyone add Django's admin later
        from django.contrib import admin

        model_admin = admin.site._registry.get(AuditEntry)
        if model_admin is not None:
            request = type("Request", (), {"user": superuser})()
            assert not model_admin.has_change_permission(request, entry)
            assert not model_admin.has_delete_permission(request, entry)
    else:
        assert client.get("/admin/").status_code == 404
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(reverse("audit:list")).status_code == 405
    assert AuditEntry.objects.filter(pk=entry.pk, actor_name="system").exists()


def test_users_who_appear_in_the_audit_log_cannot_be_deleted(client_for, user_for) -> None:
    from django.db.models import ProtectedError

    admin = client_for("admin")
    actor = user_for("admin")
    admin.force_login(actor)
    admin.post(
        reverse("environments:create"),
        {"name": "by-actor", "kind": "local", "bucket": "acme-ml", "prefix": "portal/"},
    )

    with pytest.raises(ProtectedError):
        actor.delete()
    assert AuditEntry.objects.filter(actor=actor).exists()
