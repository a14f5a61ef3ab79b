"""Sign-in throttling: a cool-off after repeated failures, never a permanent lockout.

At most LOGIN_FAILURES_PER_ADDRESS failures per (username, client address) in
LOGIN_ADDRESS_WINDOW_SECONDS and LOGIN_FAILURES_PER_USERNAME per username in
LOGIN_USERNAME_WINDOW_SECONDS (reliability.md S7: 5 per 15 minutes, 50 per hour). Beyond that
the form answers 429 until the oldest counted failure leaves its window. Failures are rows in
the database, so every gunicorn worker and every web container counts the same ones.

Usernames are counted as typed, whether or not an account has that name, so the answers for
known and unknown names are the same. Refused attempts are not counted: a cool-off always ends.
"""

import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import LoginFailure

log = logging.getLogger("portal.security")
# Failures from a client whose address the server did not report are counted under this one.
UNKNOWN_ADDRESS = str(ipaddress.IPv4Address(0))


@dataclass(frozen=True)
class Cooloff:
    """Sign-in for a username is refused for `seconds` more."""

    seconds: float
    reason: str

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.seconds / 60))


def client_address(request: HttpRequest) -> str:
    """The client's IP address. Behind a proxy, CLIENT_IP_HEADER names the header the proxy
    sets (such as HTTP_X_FORWARDED_FOR); its last entry is the one our proxy appended, so a
    client cannot choose it."""
    header = getattr(settings, "CLIENT_IP_HEADER", "")
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR") or UNKNOWN_ADDRESS


def normalise(username: str) -> str:
    return username.strip().lower()[:150]


def limits() -> list[tuple[str, int, int]]:
    """(what is counted, how many failures, in how many seconds)."""
    return [
        ("address", settings.LOGIN_FAILURES_PER_ADDRESS, settings.LOGIN_ADDRESS_WINDOW_SECONDS),
        ("username", settings.LOGIN_FAILURES_PER_USERNAME, settings.LOGIN_USERNAME_WINDOW_SECONDS),
    ]


def cooloff(username: str, address: str, own_attempt: bool = False) -> Cooloff | None:
    """The cool-off in force for this username from this address, or None when they may try.
    With `own_attempt`, one of the counted rows is the caller's own attempt in progress."""
    username = normalise(username)
    now = timezone.now()
    for scope, allowed, window in limits():
        failures = LoginFailure.objects.filter(
            username=username, at__gt=now - timedelta(seconds=window)
        )
        if scope == "address":
            failures = failures.filter(address=address)
        limit = allowed + 1 if own_attempt else allowed
        # Sign-in is allowed again once the failure that made the count reach the limit (the
        # `limit`-th newest) has left the window.
        times = list(failures.order_by("-at", "-pk").values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            remaining = (times[-1] + timedelta(seconds=window) - now).total_seconds()
            return Cooloff(seconds=max(remaining, 1), reason=scope)
    return None


def begin_attempt(username: str, address: str) -> LoginFailure | Cooloff:
    """Count a sign-in attempt before its password is checked, or say how long to wait.

    The attempt counts as a failure until `succeeded` removes it, so guesses sent in parallel
    cannot slip past the limit: one that finds the limit already full of attempts in progress
    withdraws and waits like the rest.
    """
    username = normalise(username)
    waiting = cooloff(username, address)
    if waiting is not None:
        return waiting
    oldest_kept = timezone.now() - timedelta(seconds=max(window for _, _, window in limits()))
    LoginFailure.objects.filter(at__lt=oldest_kept).delete()
    attempt = LoginFailure.objects.create(username=username, address=address)
    if cooloff(username, address, own_attempt=True) is not None:
        attempt.delete()
        return cooloff(username, address) or Cooloff(seconds=60, reason="address")
    return attempt


def failed(attempt: LoginFailure) -> Cooloff | None:
    """The attempt's password was wrong: it stays counted. Returns the cool-off it starts, if
    it starts one (logged to the security log)."""
    started = cooloff(attempt.username, attempt.address)
    if started is not None:
        log.warning(
            "sign-in locked for %d minutes: username=%r address=%s reason=%s",
            started.minutes,
            attempt.username,
            attempt.address,
            "too many failures from this address"
            if started.reason == "address"
            else "too many failures for this username",
        )
    return started


def succeeded(attempt: LoginFailure) -> None:
    """A correct password clears this address's failures for the username, not other
    addresses' (so the per-username hour limit still counts an attacker elsewhere)."""
    LoginFailure.objects.filter(username=attempt.username, address=attempt.address).delete()
