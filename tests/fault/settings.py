"""Settings for the processes the fault tests start: the portal's own, with the fault hooks on.

Only tests/fault uses this module (DJANGO_SETTINGS_MODULE=tests.fault.settings); the portal's
settings never turn the hooks on, and a deploy check fails if anything does.
"""

from portal.settings import *  # noqa: F403 (the portal's settings, unchanged but for the hooks)

PORTAL_FAULT_HOOKS = True
