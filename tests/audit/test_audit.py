"""The audit log records every change with who, when, before and after, and never forgets."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.urls import reverse

from audit.models import AppendOnlyError, AuditEntry
from environments.models import Environment
from tests.factories import EnvironmentFactory


def entries_for(instance: object) -> object:
    content_type = ContentType.objects.get_for_model(type(instance))
    return AuditEntry.objects.filter(content_type=content_type, object_id=str(instance.pk))


def test_changing_an_environment_records_who_and_each_field_before_and_after(
    client, user_for
) -> None:
    admin = user_for("admin")
    client.force_login(admin)
    environment = EnvironmentFactory(name="staging", bucket="old-bucket")

    client.post(
        reverse("environments:update", args=[environment.pk]),
        {
            "name": "staging",
            "kind": "local",
            "bucket": "new-bucket",
            "prefix": "portal/",
            "alerts_enabled": "on",  # as the form's checked box sends it
        },
    )

    entry = entries_for(environment).get(action="update")
    assert entry.actor == admin
    assert entry.actor_name == admin.username
    assert entry.changes == {"bucket": ["old-bucket", "new-bucket"]}


def test_create_and_delete_are_recorded_with_the_values(db) -> None:
    environment = EnvironmentFactory(name="gone-soon", bucket="b-123")
    pk = environment.pk

    environment.delete()

    environment.pk = pk
    created = entries_for(environment).get(action="create")
    deleted = entries_for(environment).get(action="delete")
    assert created.changes["name"] == [None, "gone-soon"]
    assert deleted.changes["bucket"] == ["b-123", None]
    assert created.actor_name == "system"


def test_passwords_never_reach_the_audit_log(user_for) -> None:
    user = user_for("viewer")

    user.set_password("violet staircase 1987")
    user.save()

    for entry in entries_for(user):
        assert "violet" not in str(entry.changes)
        assert "md5$" not in str(entry.changes) and "argon2" not in str(entry.changes)
    latest = entries_for(user).first()
    assert latest.changes["password"][1] == "•••••• (changed)"


def test_a_failed_change_leaves_no_audit_entry(db) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        EnvironmentFactory(name="half-written")
        raise RuntimeError("the change fails after the save")

    assert not Environment.objects.filter(name="half-written").exists()
    assert not AuditEntry.objects.filter(object_repr="half-written").exists()


def test_audit_entries_cannot_be_changed_or_deleted(db) -> None:
    EnvironmentFactory()
    entry = AuditEntry.objects.first()

    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.update(actor_name="someone else")


def test_admin_reads_and_searches_the_audit_log(client_for) -> None:
    EnvironmentFactory(name="alpha")
    EnvironmentFactory(name="beta")

    response = client_for("admin").get(reverse("audit:list"), {"q": "alpha"})

    names = [entry.object_repr for entry in response.context["page"]]
    assert "alpha" in names
    assert "beta" not in names


def test_user_written_values_render_escaped_in_the_audit_log(client_for) -> None:
    EnvironmentFactory(description='<script>alert("x")</script>')

    response = client_for("admin").get(reverse("audit:list"))

    assert b'<script>alert("x")' not in response.content
    assert b"&lt;script&gt;" in response.content
