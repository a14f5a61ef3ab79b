"""Sign-in throttling (S7): a cool-off after repeated failures, the same for unknown names."""

import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db.models import F
from django.db.models.signals import pre_save
from django.urls import reverse

from accounts import throttle
from accounts.models import LoginFailure
from tests.factories import PASSWORD

pytestmark = pytest.mark.security

URL = "/accounts/login/"


class CountingHasher(MD5PasswordHasher):
    """The suite's fast hasher, counting how often a password is hashed."""

    algorithm = "md5"  # reads the factories' MD5 hashes
    calls = 0

    def encode(self, password: str, salt: str) -> str:
        CountingHasher.calls += 1
        return super().encode(password, salt)


def fail(client, username: str, address: str = "10.0.0.1"):
    """A sign-in with a wrong password."""
    wrong = {"username": username, "password": "wrong wrong"}  # pragma: allowlist secret
    return client.post(URL, wrong, REMOTE_ADDR=address)


def without_tokens(response) -> str:
    """The page without its CSRF tokens, which differ on every response."""
    tokens = r'(x-csrftoken": "|csrfmiddlewaretoken" value=")[^"]+'
    return re.sub(tokens, "", response.content.decode())


def age_failures(seconds: int) -> None:
    """Move every recorded failure `seconds` into the past, as if that much time went by."""
    LoginFailure.objects.update(at=F("at") - timedelta(seconds=seconds))


def test_five_failures_from_one_address_start_a_cool_off_with_how_long_to_wait(
    client, user_for
) -> None:
    user = user_for("viewer")

    answers = [fail(client, user.username).status_code for _ in range(5)]
    refused = client.post(
        URL, {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )

    assert answers == [200, 200, 200, 200, 429]
    assert refused.status_code == 429  # even the right password waits out the cool-off
    assert "_auth_user_id" not in client.session
    text = refused.content.decode()
    assert "Too many sign-in attempts" in text
    assert "Try again in 15 minutes" in text


def test_the_cool_off_ends_by_itself_and_the_right_password_then_works(client, user_for) -> None:
    user = user_for("viewer")
    for _ in range(5):
        fail(client, user.username)

    age_failures(15 * 60 + 1)
    response = client.post(
        URL, {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_cool_off_counts_down_from_the_failure_that_started_it(client, user_for) -> None:
    user = user_for("viewer")
    for _ in range(5):
        fail(client, user.username)
    age_failures(11 * 60)

    response = fail(client, user.username)

    assert response.status_code == 429
    assert "Try again in 4 minutes" in response.content.decode()


def test_refused_attempts_do_not_extend_the_cool_off(client, user_for) -> None:
    user = user_for("viewer")
    for _ in range(5):
        fail(client, user.username)

    for _ in range(20):
        assert fail(client, user.username).status_code == 429

    assert LoginFailure.objects.count() == 5


def test_a_locked_address_does_not_lock_the_user_out_elsewhere(client, user_for) -> None:
    user = user_for("viewer")
    for _ in range(5):
        fail(client, user.username, address="203.0.113.9")

    response = client.post(
        URL, {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )

    assert response.status_code == 302


def test_fifty_failures_per_hour_lock_the_username_from_every_address(client, user_for) -> None:
    user = user_for("viewer")
    for attempt in range(50):
        fail(client, user.username, address=f"198.51.100.{attempt // 4}")

    from_elsewhere = client.post(
        URL, {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.9.9.9"
    )
    age_failures(3600 + 1)
    an_hour_later = client.post(
        URL, {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.9.9.9"
    )

    assert from_elsewhere.status_code == 429
    assert "Try again in 60 minutes" in from_elsewhere.content.decode()
    assert an_hour_later.status_code == 302


def test_a_success_keeps_the_failures_other_addresses_made(client, user_for) -> None:
    user = user_for("viewer")
    for attempt in range(49):
        fail(client, user.username, address=f"198.51.100.{attempt // 4}")
    fail(client, user.username, address="10.0.0.1")

    client.post(URL, {"username": user.username, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    client.post(reverse("accounts:logout"))
    fail(client, user.username, address="10.0.0.1")
    response = fail(client, user.username, address="10.0.0.1")

    # 49 failures from elsewhere still count: two more make 51, over the hour's 50.
    assert response.status_code == 429


def test_usernames_are_counted_whatever_their_case(client, user_for) -> None:
    user_for("viewer", username="Robin")
    for name in ["robin", "ROBIN", "Robin", " robin", "rObIn"]:
        fail(client, name)

    assert fail(client, "robin").status_code == 429


def test_unknown_and_known_usernames_get_the_same_answers_and_cool_off(client, user_for) -> None:
    user = user_for("viewer")

    known = [fail(client, user.username) for _ in range(5)]
    unknown = [fail(client, "nobody-by-that-name") for _ in range(5)]

    assert [r.status_code for r in known] == [r.status_code for r in unknown]
    assert known[0].context["form"].errors == unknown[0].context["form"].errors
    assert without_tokens(known[-1]) == without_tokens(unknown[-1])


def test_an_unknown_username_costs_a_password_hash_like_a_known_one(
    client, user_for, settings
) -> None:
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    user = user_for("viewer")
    user.set_password("the real one 42")
    user.save()

    CountingHasher.calls = 0
    fail(client, user.username)
    for_known = CountingHasher.calls
    CountingHasher.calls = 0
    fail(client, "nobody-by-that-name")
    for_unknown = CountingHasher.calls

    assert for_known == for_unknown == 1


def test_a_cool_off_is_logged_to_the_security_logger(client, user_for, caplog) -> None:
    user = user_for("viewer")

    with caplog.at_level(logging.INFO, logger="portal.security"):
        for _ in range(5):
            fail(client, user.username, address="192.0.2.7")

    lockouts = [r for r in caplog.records if r.name == "portal.security"]
    assert len(lockouts) == 1
    message = lockouts[0].getMessage()
    assert user.username.lower() in message and "192.0.2.7" in message
    assert "wrong wrong" not in message


def test_behind_a_proxy_the_last_forwarded_address_is_counted(client, user_for, settings) -> None:
    settings.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    user = user_for("viewer")

    for attempt in range(5):
        client.post(
            URL,
            {"username": user.username, "password": "wrong wrong"},
            REMOTE_ADDR="172.16.0.2",
            # The client writes the first entries; our proxy appends the address it saw.
            HTTP_X_FORWARDED_FOR=f"1.2.3.{attempt}, 203.0.113.5",
        )

    assert set(LoginFailure.objects.values_list("address", flat=True)) == {"203.0.113.5"}


def test_guesses_in_parallel_cannot_slip_past_the_limit(db) -> None:
    # Seven attempts begun before any password is checked, as seven workers would at once.
    attempts = [throttle.begin_attempt("robin", "10.0.0.1") for _ in range(7)]

    allowed = [attempt for attempt in attempts if isinstance(attempt, LoginFailure)]
    refused = [attempt for attempt in attempts if isinstance(attempt, throttle.Cooloff)]
    assert len(allowed) == 5
    assert len(refused) == 2
    assert LoginFailure.objects.count() == 5


def test_an_attempt_that_finds_the_limit_taken_withdraws_its_count(db, settings) -> None:
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    LoginFailure.objects.create(username="robin", address="10.0.0.1")

    def parallel_attempt(sender: type, instance: LoginFailure, **kwargs: object) -> None:
        # Another worker counts its attempt between this one's check and its own count.
        pre_save.disconnect(parallel_attempt, sender=LoginFailure)
        LoginFailure.objects.create(username="robin", address="10.0.0.1")

    pre_save.connect(parallel_attempt, sender=LoginFailure)
    try:
        late = throttle.begin_attempt("robin", "10.0.0.1")
    finally:
        pre_save.disconnect(parallel_attempt, sender=LoginFailure)

    assert isinstance(late, throttle.Cooloff)
    assert LoginFailure.objects.count() == 2  # the two that got there first
