"""Server time of every page in the navigation, against the goal of p95 under 300 ms (R6)."""

import statistics
import time

from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse

from accounts.context_processors import NAVIGATION
from accounts.roles import Role
from environments.models import Environment

REQUESTS = 200
GOAL_P95_MS = 300


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run() -> None:
    user = get_user_model().objects.create(username="bench")
    user.set_role(Role.ADMIN)
    for number in range(50):
        Environment.objects.create(name=f"bench-{number}", bucket="bench-bucket")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    pages = [("Home", "/")] + [(section.label, reverse(section.url_name)) for section in NAVIGATION]
    print(f"Page server time, {REQUESTS} requests each (test client, SQLite, 50 environments)")
    print(f"{'page':<14}{'p50 ms':>9}{'p95 ms':>9}{'p95/goal':>10}")
    with override_settings(DEBUG=False):
        for label, url in pages:
            samples = []
            for _ in range(REQUESTS):
                started = time.perf_counter()
                response = client.get(url)
                samples.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")
            p95 = percentile(samples, 0.95)
            print(
                f"{label:<14}{statistics.median(samples):>9.2f}{p95:>9.2f}"
                f"{p95 / GOAL_P95_MS:>10.3f}"
            )
    print(f"(goal: p95 under {GOAL_P95_MS} ms, so every p95/goal under 1)\n")
