"""Sessions (S8): signing out or changing a password ends the user's sessions everywhere."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.security

NEW_PASSWORD = "violet staircase 1987"  # pragma: allowlist secret


def signed_in(user, password: str = PASSWORD) -> Client:
    """A browser that signed in through the form."""
    client = Client()
    response = client.post(
        reverse("accounts:login"), {"username": user.username, "password": password}
    )
    assert response.status_code == 302
    return client


def is_signed_in(client: Client) -> bool:
    return client.get(reverse("home")).status_code == 200


def test_signing_out_ends_the_users_sessions_in_every_browser(user_for) -> None:
    user = user_for("viewer")
    laptop, phone = signed_in(user), signed_in(user)
    other_user = signed_in(user_for("viewer"))
    phone_key = phone.session.session_key

    laptop.post(reverse("accounts:logout"))

    assert not is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not Session.objects.filter(session_key=phone_key).exists()
    assert is_signed_in(other_user)


def test_changing_the_password_keeps_this_session_and_ends_the_others(user_for) -> None:
    user = user_for("viewer")
    laptop, phone = signed_in(user), signed_in(user)
    phone_key = phone.session.session_key

    response = laptop.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not Session.objects.filter(session_key=phone_key).exists()


def test_the_session_kept_after_a_password_change_still_ends_at_sign_out_elsewhere(
    user_for,
) -> None:
    user = user_for("viewer")
    laptop = signed_in(user)
    laptop.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    phone = signed_in(user, NEW_PASSWORD)

    phone.post(reverse("accounts:logout"))

    assert not is_signed_in(laptop)


def test_an_admin_reset_or_lock_signs_the_user_out_everywhere(client_for, user_for) -> None:
    admin = client_for("admin")
    reset_user, locked_user = user_for("viewer"), user_for("viewer")
    reset_browser, locked_browser = signed_in(reset_user), signed_in(locked_user)

    admin.post(reverse("accounts:user_reset_password", args=[reset_user.pk]))
    admin.post(
        reverse("accounts:user_update", args=[locked_user.pk]),
        {"role": 1, "first_name": "", "last_name": "", "email": ""},  # "Can sign in" unticked
    )

    assert not is_signed_in(reset_browser)
    assert not is_signed_in(locked_browser)


def test_an_idle_session_ends_only_itself(user_for, settings) -> None:
    import time

    from accounts.middleware import SESSION_SEEN_AT

    user = user_for("viewer")
    laptop, phone = signed_in(user), signed_in(user)
    session = laptop.session
    session[SESSION_SEEN_AT] = int(time.time()) - settings.SESSION_IDLE_SECONDS - 1
    session.save()

    assert not is_signed_in(laptop)
    assert is_signed_in(phone)
