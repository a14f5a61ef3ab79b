"""The fault hooks kill a process only where the fault tests' own settings turn them on."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fault
ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django; django.setup(); from endpoints import faults; "
    "faults.kill_point('config'); print('alive')"
)


def run_probe(settings_module: str) -> subprocess.CompletedProcess:
    """A process at the `config` kill point, asked to die there by the environment."""
    environment = os.environ | {
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PORTAL_FAULT_KILL_AT_STEP": "config",
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, env=environment, cwd=ROOT, timeout=60
    )


def test_the_portals_settings_never_honour_a_kill_request() -> None:
    probe = run_probe("portal.settings")

    assert probe.returncode == 0, probe.stderr.decode()
    assert probe.stdout.strip() == b"alive"


def test_the_fault_tests_settings_kill_at_the_named_point() -> None:
    probe = run_probe("tests.fault.settings")

    assert probe.returncode == -signal.SIGKILL
    assert b"alive" not in probe.stdout


def test_the_hooks_are_off_unless_a_setting_turns_them_on(settings) -> None:
    from endpoints import faults

    assert not faults.enabled()
    settings.PORTAL_FAULT_HOOKS = True
    assert faults.enabled()
