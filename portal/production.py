"""What HTTPS production adds to the settings: nothing but transport security.

Use with `DJANGO_SETTINGS_MODULE=portal.production` behind a TLS-terminating proxy that sets
`X-Forwarded-Proto`. `python manage.py check --deploy --fail-level WARNING` passes with it.
"""

from portal.settings import *  # noqa: F403 (production is the base settings plus the lines below)

PORTAL_PROFILE = "production"
DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)  # noqa: F405
# /healthz is probed over plain http by compose and load balancers inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# Long-cacheable static files: hashed names and precompressed copies, made by collectstatic.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False
