"""Signing in: one-time passwords, session limits, password rules, hashing."""

import time

from django.contrib.auth.hashers import check_password, make_password
from django.core.management import call_command
from django.urls import reverse

from accounts.middleware import SESSION_LOGIN_AT, SESSION_SEEN_AT
from accounts.models import User
from accounts.roles import Role
from portal import settings as portal_settings
from tests.factories import PASSWORD


def test_passwords_are_hashed_with_argon2id_by_default(settings) -> None:
    settings.PASSWORD_HASHERS = portal_settings.PASSWORD_HASHERS  # undo the suite's fast hasher

    encoded = make_password("violet staircase 1987")

    assert encoded.startswith("argon2$argon2id$")
    assert check_password("violet staircase 1987", encoded)


def test_sign_in_rotates_the_session_key(client, user_for) -> None:
    user = user_for("viewer")
    client.get(reverse("accounts:login"))
    before = client.session.session_key

    response = client.post(
        reverse("accounts:login"), {"username": user.username, "password": PASSWORD}
    )

    assert response.status_code == 302
    assert client.session.session_key != before


def test_wrong_password_and_unknown_user_get_the_same_answer(client, user_for) -> None:
    user = user_for("viewer")
    url = reverse("accounts:login")

    wrong_password = client.post(url, {"username": user.username, "password": "nope nope nope"})
    unknown_user = client.post(url, {"username": "nobody-here", "password": "nope nope nope"})

    assert wrong_password.status_code == unknown_user.status_code == 200
    assert b"Please enter a correct username and password" in wrong_password.content
    assert wrong_password.context["form"].errors == unknown_user.context["form"].errors


def test_ensure_admin_creates_one_admin_with_a_one_time_password(db, capsys) -> None:
    call_command("ensure_admin")
    printed = capsys.readouterr().out
    password = printed.split("password:")[1].split()[0]

    admin = User.objects.get(username="admin")
    assert admin.role == Role.ADMIN
    assert admin.must_change_password
    assert admin.check_password(password)
    assert password not in admin.password


def test_ensure_admin_does_nothing_when_an_admin_exists(db, user_for, capsys) -> None:
    user_for("admin")

    call_command("ensure_admin")

    assert "no account created" in capsys.readouterr().out
    assert not User.objects.filter(username="admin").exists()


def test_one_time_password_must_be_replaced_before_anything_else(client, user_for) -> None:
    user = user_for("admin", must_change_password=True)
    client.force_login(user)

    blocked = client.get(reverse("environments:list"))
    changed = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "violet staircase 1987",
            "new_password2": "violet staircase 1987",
        },
    )
    after = client.get(reverse("environments:list"))

    assert blocked.status_code == 302
    assert blocked["Location"] == reverse("accounts:password_change")
    assert changed.status_code == 302
    assert after.status_code == 200
    user.refresh_from_db()
    assert not user.must_change_password


def test_short_or_common_passwords_are_refused_with_the_reason(client, user_for) -> None:
    client.force_login(user_for("viewer"))

    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "password", "new_password2": "password"},
    )

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["new_password2"])
    assert "at least 12 characters" in errors
    assert "too common" in errors


def test_idle_session_ends_after_the_idle_limit(client, user_for, settings) -> None:
    client.force_login(user_for("viewer"))
    client.get(reverse("home"))
    session = client.session
    session[SESSION_SEEN_AT] = int(time.time()) - settings.SESSION_IDLE_SECONDS - 1
    session.save()

    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_session_ends_at_the_absolute_limit_even_when_active(client, user_for, settings) -> None:
    client.force_login(user_for("viewer"))
    client.get(reverse("home"))
    session = client.session
    session[SESSION_LOGIN_AT] = int(time.time()) - settings.SESSION_ABSOLUTE_SECONDS - 1
    session[SESSION_SEEN_AT] = int(time.time())
    session.save()

    response = client.get(reverse("home"))

    assert response.status_code == 302


def test_sign_out_is_a_post_and_ends_the_session(client, user_for) -> None:
    client.force_login(user_for("viewer"))

    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_post_without_csrf_token_is_refused_and_the_htmx_header_is_accepted(user_for) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user_for("admin"))
    page = client.get(reverse("environments:create"))
    token = page.cookies["csrftoken"].value
    body_headers = page.content.decode().split("hx-headers='")[1].split("'")[0]

    refused = client.post(reverse("environments:create"), {"name": "x"})
    accepted = client.post(
        reverse("environments:create"), {"name": "x"}, headers={"X-CSRFToken": token}
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200  # the form, with its errors: the token was accepted
    assert '"x-csrftoken"' in body_headers
