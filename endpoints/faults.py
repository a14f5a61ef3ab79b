"""Fault hooks for the fault tests (tests/fault): a worker that kills itself at a chosen point.

Off unless the `PORTAL_FAULT_HOOKS` setting is True, which only tests/fault/settings.py sets;
portal/settings.py never does, and a deploy check fails if it is on. This module is the one
place that reads it.
"""

import os
import signal

from django.conf import settings


def enabled() -> bool:
    """Whether the fault hooks may act: `PORTAL_FAULT_HOOKS`, False unless a test turns it on."""
    return bool(getattr(settings, "PORTAL_FAULT_HOOKS", False))


def kill_point(name: str) -> None:
    """SIGKILL this process at the point `name` ("model", "config", "endpoint": right after that
    deployment step's provider work; "polling": right after a poll described an endpoint) when
    the environment asks for it with PORTAL_FAULT_KILL_AT_STEP=<name>. With
    PORTAL_FAULT_ONCE_FILE set, only the first process to create that file dies, so a test can
    start every worker at once and still lose exactly one."""
    if not enabled() or os.environ.get("PORTAL_FAULT_KILL_AT_STEP") != name:
        return
    once = os.environ.get("PORTAL_FAULT_ONCE_FILE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no acknowledgement: a real crash
