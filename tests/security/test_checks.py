"""Security system checks (S1): `check --deploy` refuses settings that must never ship."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import SystemCheckError

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parents[2]


def problems(deploy: bool = True) -> str:
    """The security checks' messages ('' when they pass)."""
    try:
        call_command("check", deploy=deploy, tags=["security"])
    except SystemCheckError as error:
        return str(error)
    return ""


def test_the_laptop_defaults_pass_the_security_checks(settings) -> None:
    assert settings.PORTAL_PROFILE == "laptop"
    assert "portal.E" not in problems()


def test_fault_hooks_fail_the_deploy_check_but_not_the_everyday_one(settings) -> None:
    settings.PORTAL_FAULT_HOOKS = True

    assert "portal.E001" in problems(deploy=True)
    assert "portal.E001" not in problems(deploy=False)  # the fault tests start processes


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "runtime"])  # noqa: S104
def test_a_laptop_runtime_beyond_loopback_fails_every_check(settings, host) -> None:
    settings.LOCAL_RUNTIME_HOST = host

    assert "portal.E002" in problems(deploy=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_a_loopback_runtime_passes(settings, host) -> None:
    settings.LOCAL_RUNTIME_HOST = host

    assert "portal.E002" not in problems()


def test_production_may_bind_the_runtime_inside_its_network(settings) -> None:
    settings.PORTAL_PROFILE = "production"
    settings.LOCAL_RUNTIME_HOST = "0.0.0.0"  # noqa: S104 (compose's private network)

    assert "portal.E002" not in problems()


def test_static_keys_without_an_encryption_key_fail(settings) -> None:
    settings.PORTAL_ALLOW_STATIC_KEYS = True
    settings.PORTAL_ENCRYPTION_KEYS = []
    refused = problems(deploy=False)
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    assert "portal.E003" in refused
    assert "portal.E003" not in problems(deploy=False)


def test_production_check_deploy_fails_with_fault_hooks_in_the_environment() -> None:
    environment = dict(
        os.environ, DJANGO_SETTINGS_MODULE="portal.production", PORTAL_FAULT_HOOKS="1"
    )
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "portal.E001" in result.stderr
