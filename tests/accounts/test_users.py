"""Admins add people, give them roles and reset their passwords."""

from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditEntry


def test_admin_adds_a_user_with_a_role_and_sees_the_one_time_password_once(client_for) -> None:
    client = client_for("admin")

    response = client.post(
        reverse("accounts:user_create"),
        {"username": "grace", "email": "grace@example.com", "role": Role.DEPLOYER.value},
    )

    grace = User.objects.get(username="grace")
    password = response.context["password"]
    assert grace.role == Role.DEPLOYER
    assert grace.must_change_password
    assert grace.check_password(password)
    assert password.encode() in response.content
    assert (
        client.get(reverse("accounts:user_update", args=[grace.pk])).content.count(
            password.encode()
        )
        == 0
    )


def test_adding_a_user_with_a_taken_username_says_so(client_for, user_for) -> None:
    taken = user_for("viewer")

    response = client_for("admin").post(
        reverse("accounts:user_create"), {"username": taken.username.upper(), "role": 1}
    )

    assert response.status_code == 200
    assert "already has this username" in response.context["form"].errors["username"][0]
    assert User.objects.filter(username__iexact=taken.username).count() == 1


def test_admin_changes_a_role_and_the_change_is_audited(client_for, user_for) -> None:
    client = client_for("admin")
    account = user_for("viewer")

    response = client.post(
        reverse("accounts:user_update", args=[account.pk]),
        {"email": account.email, "is_active": "on", "role": Role.ENGINEER.value},
    )

    assert response.status_code == 302
    account = User.objects.get(pk=account.pk)
    assert account.role == Role.ENGINEER
    entry = AuditEntry.objects.filter(object_id=str(account.pk), changes__has_key="role").last()
    assert entry.changes["role"] == ["Viewer", "Engineer"]
    assert entry.actor_name != "system"


def test_admin_cannot_demote_or_lock_themselves(client, user_for) -> None:
    admin = user_for("admin")
    client.force_login(admin)

    response = client.post(
        reverse("accounts:user_update", args=[admin.pk]),
        {"email": admin.email, "is_active": "on", "role": Role.VIEWER.value},
    )

    assert response.status_code == 200
    assert "cannot lower your own role" in str(response.context["form"].non_field_errors())
    assert User.objects.get(pk=admin.pk).role == Role.ADMIN


def test_password_reset_gives_a_new_one_time_password(client_for, user_for) -> None:
    account = user_for("engineer")

    response = client_for("admin").post(reverse("accounts:user_reset_password", args=[account.pk]))

    account.refresh_from_db()
    assert account.must_change_password
    assert account.check_password(response.context["password"])
