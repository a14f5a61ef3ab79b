"""Security system checks (tag `security`): settings that must never reach a running portal.

`check_deployment` runs with `manage.py check --deploy`; `check_configuration` runs before
every management command (runserver, runtime, migrate), so a laptop never starts in an unsafe
shape either.
"""

import ipaddress
import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from environments import outbound


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@register(Tags.security, deploy=True)
def check_deployment(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """Test-only fault hooks (endpoints/faults.py) make workers kill themselves on purpose:
    never in a deployment. Only the fault tests' settings turn them on; the variable of the
    same name is refused too, in case a settings file ever reads it."""
    if getattr(settings, "PORTAL_FAULT_HOOKS", False) or env_flag("PORTAL_FAULT_HOOKS"):
        return [
            Error(
                "Test fault hooks are enabled (PORTAL_FAULT_HOOKS).",
                hint="Unset PORTAL_FAULT_HOOKS: it exists only for the fault tests.",
                id="portal.E001",
            )
        ]
    return []


@register(Tags.security)
def check_configuration(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """The runtime checks no credentials, so on a laptop it listens on loopback only; and AWS
    keys are never stored unless they can be encrypted with a key of their own."""
    errors = []
    profile = getattr(settings, "PORTAL_PROFILE", "laptop")
    host = getattr(settings, "LOCAL_RUNTIME_HOST", "127.0.0.1")
    if profile == "laptop" and not is_loopback(host):
        errors.append(
            Error(
                f"The local runtime would listen on {host}, beyond this machine.",
                hint="Set LOCAL_RUNTIME_HOST=127.0.0.1: the runtime asks for no credentials, so "
                "anyone who can reach it could deploy and invoke models.",
                id="portal.E002",
            )
        )
    allow_keys = getattr(settings, "PORTAL_ALLOW_STATIC_KEYS", False)
    if allow_keys and not getattr(settings, "PORTAL_ENCRYPTION_KEYS", []):
        errors.append(
            Error(
                "Static AWS keys are allowed (PORTAL_ALLOW_STATIC_KEYS) but no encryption key is "
                "set.",
                hint="Set PORTAL_ENCRYPTION_KEYS to one or more Fernet keys (not SECRET_KEY), or "
                "leave static keys off and use a profile or a role.",
                id="portal.E003",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def check_outbound_guard(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """S9: a deployed portal connects only to AWS and its runtime (environments/outbound.py)."""
    if getattr(settings, "PORTAL_OUTBOUND_GUARD", True):
        return []
    return [
        Warning(
            "The outbound connection guard is off (PORTAL_OUTBOUND_GUARD): the portal would "
            "connect wherever a name or an endpoint URL points it, the metadata service included.",
            hint="Unset PORTAL_OUTBOUND_GUARD; list a proxy or VPC endpoint names in "
            "PORTAL_OUTBOUND_ALLOW instead.",
            id="portal.W001",
        )
    ]


@register(Tags.security)
def check_outbound_allow(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """An entry that is not host:port would never match, so what it meant to allow stays refused."""
    wrong = [
        entry
        for entry in getattr(settings, "PORTAL_OUTBOUND_ALLOW", [])
        if outbound.place(entry) is None
    ]
    if not wrong:
        return []
    return [
        Error(
            f"PORTAL_OUTBOUND_ALLOW holds entries that are not host:port: {', '.join(wrong)}.",
            hint="Write each as host:port, such as proxy.internal:3128 or [::1]:8080.",
            id="portal.E004",
        )
    ]


@register(Tags.security)
def check_alert_webhook(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """The webhook URL carries its token in the clear unless it is HTTPS; plain HTTP is for a
    receiver on this machine only."""
    url = getattr(settings, "PORTAL_ALERT_WEBHOOK_URL", "")
    if not url:
        return []
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return []
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return []
    return [
        Error(
            "PORTAL_ALERT_WEBHOOK_URL must be an https:// URL (http:// only on this machine).",
            hint="Copy the webhook URL your chat service gave you; it starts with https://.",
            id="portal.E005",
        )
    ]
