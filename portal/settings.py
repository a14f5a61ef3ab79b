"""Settings for Endpoint Portal.

Every value comes from the environment, with a default that runs on a bare machine: SQLite and
a filesystem broker under `var/`, the local runtime on loopback, plain http. `portal/production.py`
adds only what HTTPS production needs. `.env.example` lists every variable.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    """Read a yes/no variable: 1, true, yes and on (any case) mean yes."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated list, ignoring blanks."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def secret_key_from_var(path: Path) -> str:
    """The SECRET_KEY kept in var/, written once with owner-only permissions on first run."""
    if not path.exists():
        temporary = path.with_name(f"{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
        try:
            os.link(temporary, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


# "laptop" here, "production" in portal/production.py; portal/checks.py is stricter on a laptop,
# where nothing but loopback should ever listen.
PORTAL_PROFILE = "laptop"

SECRET_KEY = os.environ.get("SECRET_KEY") or secret_key_from_var(VAR_DIR / "secret_key")
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000"
)

INSTALLED_APPS = [
    "portal",
    "accounts",
    "audit",
    "environments",
    "endpoints",
    "modelcards",
    "playground",
    "insights",
    "alerts",
    "runtime",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SessionLimitsMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "accounts.middleware.PasswordChangeRequiredMiddleware",
    "audit.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "environments.middleware.provider_patience",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "accounts.context_processors.navigation",
            ],
        },
    },
]

# Database: DATABASE_URL, or a SQLite file under var/ tuned for a web server, a worker, beat and
# the runtime writing at once (WAL, immediate transactions, a long busy timeout).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Connections persist (DATABASE_CONN_MAX_AGE) as on PostgreSQL: opening one costs the pragmas
    # below and Django's function registrations, about a tenth of a playground request's CPU.
    # A file, not memory, so tests can start a real worker process on the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000"
        ),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sessions: the cookie lives at most 12 hours; accounts.middleware also ends a session after
# 2 idle hours and 12 hours after login, whichever comes first.
SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_SECONDS", 2 * 3600))
SESSION_ABSOLUTE_SECONDS = int(os.environ.get("SESSION_ABSOLUTE_SECONDS", 12 * 3600))
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
SESSION_COOKIE_HTTPONLY = True

# Sign-in throttling (accounts/throttle.py): a cool-off after repeated failures, never a lockout
# an Admin must lift. Behind a proxy, CLIENT_IP_HEADER names the META key it sets with the
# client's address (HTTP_X_FORWARDED_FOR); empty means REMOTE_ADDR.
LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("LOGIN_FAILURES_PER_ADDRESS", "5"))
LOGIN_ADDRESS_WINDOW_SECONDS = int(os.environ.get("LOGIN_ADDRESS_WINDOW_SECONDS", 15 * 60))
LOGIN_FAILURES_PER_USERNAME = int(os.environ.get("LOGIN_FAILURES_PER_USERNAME", "50"))
LOGIN_USERNAME_WINDOW_SECONDS = int(os.environ.get("LOGIN_USERNAME_WINDOW_SECONDS", 3600))
CLIENT_IP_HEADER = os.environ.get("CLIENT_IP_HEADER", "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "portal.staticfinders.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise serves straight from the finders, so `make run` and tests need no collectstatic.
# Production collects into STATIC_ROOT with hashed, compressed names (portal/production.py).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Content-Security-Policy: scripts only from our origin or with this response's nonce; no
# inline script, no eval. Styles only from our own stylesheets.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],  # plotly works under this: include templates/includes/plotly.html
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# The browser and the portal agree on clickjacking and content sniffing defaults; 5.2 already
# sends DENY, nosniff, same-origin referrer and COOP. Production turns on HTTPS-only settings.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Celery: the broker is Redis in production; on a laptop it is kombu's filesystem transport,
# which needs no server. Durability comes from the database, not the broker (reliability.md).
# A test session has a folder of its own: pytest sets PYTEST_VERSION and the workers it starts
# inherit it. So `make test` beside a running `make run` neither takes that portal's messages
# nor loses its own to that portal's worker.
BROKER_DIR = VAR_DIR / ("test-broker" if os.environ.get("PYTEST_VERSION") else "broker")
CELERY_BROKER_URL = (
    os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or "filesystem://localhost//"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("out", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Exchange tables too, or kombu writes them to ./control in whatever folder Celery runs.
        "control_folder": str(BROKER_DIR / "control"),
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 900,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 150
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat polls endpoints in transition, and how long a deployment may sit without a
# worker holding its lease before the reconciler sends it again (reliability.md §3.3).
ENDPOINT_POLL_SECONDS = float(os.environ.get("ENDPOINT_POLL_SECONDS", "5"))
RECONCILE_AFTER_SECONDS = float(os.environ.get("RECONCILE_AFTER_SECONDS", "30"))
# A worker's claim on a deployment step; a killed worker's step is re-driven after it runs out.
DEPLOYMENT_LEASE_SECONDS = float(os.environ.get("DEPLOYMENT_LEASE_SECONDS", "150"))
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "portal.tasks.heartbeat", "schedule": 30.0},
    # Expiring: a poll or reconcile that waited past its next one is dropped, never piled up.
    "poll-endpoints": {
        "task": "endpoints.tasks.poll_endpoints",
        "schedule": ENDPOINT_POLL_SECONDS,
        "options": {"expires": ENDPOINT_POLL_SECONDS},
    },
    "enforce-idle-rules": {
        "task": "endpoints.tasks.enforce_idle_rules",
        "schedule": float(os.environ.get("IDLE_CHECK_SECONDS", "300")),
    },
    "reconcile-deployments": {
        "task": "endpoints.tasks.reconcile_deployments",
        "schedule": RECONCILE_AFTER_SECONDS,
        "options": {"expires": RECONCILE_AFTER_SECONDS},
    },
    # Answers of queued async playground requests, picked up when they land.
    "watch-async-invocations": {
        "task": "playground.tasks.watch_async",
        "schedule": float(os.environ.get("PLAYGROUND_WATCH_SECONDS", "5")),
    },
    # Alerts whose message was lost, or whose webhook was down, once their back-off is over.
    "send-alerts": {
        "task": "alerts.tasks.send_due_alerts",
        "schedule": float(os.environ.get("ALERT_SWEEP_SECONDS", "60")),
    },
    # Data capture files into insights' rollups and records (incremental, idempotent).
    "ingest-capture": {
        "task": "insights.tasks.ingest_capture",
        "schedule": float(os.environ.get("INSIGHTS_INGEST_SECONDS", "60")),
    },
}
WORKER_HEARTBEAT_FILE = Path(os.environ.get("WORKER_HEARTBEAT_FILE", VAR_DIR / "worker-heartbeat"))
# /healthz calls the worker stale when its last heartbeat is older than this.
WORKER_HEARTBEAT_STALE_SECONDS = int(os.environ.get("WORKER_HEARTBEAT_STALE_SECONDS", "90"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")

# The local runtime: the embedded, SageMaker-compatible inference host (`manage.py runtime`).
# Loopback only: the runtime checks no credentials (portal/checks.py refuses anything else).
LOCAL_RUNTIME_HOST = os.environ.get("LOCAL_RUNTIME_HOST", "127.0.0.1")
LOCAL_RUNTIME_PORT = int(os.environ.get("LOCAL_RUNTIME_PORT", "8081"))
LOCAL_RUNTIME_URL = os.environ.get(
    "LOCAL_RUNTIME_URL", f"http://{LOCAL_RUNTIME_HOST}:{LOCAL_RUNTIME_PORT}"
)
LOCAL_S3_ROOT = Path(os.environ.get("LOCAL_S3_ROOT", VAR_DIR / "s3"))
# Where the runtime keeps its definitions (state.json), unpacked models and instance folders.
LOCAL_RUNTIME_STATE_DIR = Path(os.environ.get("LOCAL_RUNTIME_STATE_DIR", VAR_DIR / "runtime"))
LOCAL_RUNTIME_STARTUP_TIMEOUT = float(os.environ.get("LOCAL_RUNTIME_STARTUP_TIMEOUT", "60"))
LOCAL_RUNTIME_INVOCATION_TIMEOUT = float(os.environ.get("LOCAL_RUNTIME_INVOCATION_TIMEOUT", "60"))
# Each instance is a process: keep variants small on a laptop.
LOCAL_RUNTIME_MAX_INSTANCES = int(os.environ.get("LOCAL_RUNTIME_MAX_INSTANCES", "4"))
# A multi-model instance unloads its least recently used models beyond this many unpacked MB.
LOCAL_RUNTIME_MULTI_MODEL_BUDGET_MB = float(
    os.environ.get("LOCAL_RUNTIME_MULTI_MODEL_BUDGET_MB", "512")
)
# A serverless endpoint without provisioned concurrency stops its process after this idle time.
LOCAL_RUNTIME_SERVERLESS_IDLE_SECONDS = float(
    os.environ.get("LOCAL_RUNTIME_SERVERLESS_IDLE_SECONDS", "300")
)
# Images kept warm as one idle, pre-imported process each, so a serverless cold start only
# loads the model (milliseconds for scikit-learn instead of 1.3 s). Images that are not
# installed (llm without llama-cpp-python) are skipped. Empty: no spares.
LOCAL_RUNTIME_WARM_IMAGES = env_list("LOCAL_RUNTIME_WARM_IMAGES", "sklearn,python,llm")
# How often the autoscaling controller evaluates target-tracking policies (CloudWatch: 60 s).
LOCAL_RUNTIME_AUTOSCALING_PERIOD = float(os.environ.get("LOCAL_RUNTIME_AUTOSCALING_PERIOD", "60"))
# Each model process's address-space limit (RLIMIT_AS), so a runaway model fails alone; 0: none.
LOCAL_RUNTIME_MODEL_MEMORY_MB = int(os.environ.get("LOCAL_RUNTIME_MODEL_MEMORY_MB", "8192"))

# S9: the portal's own outbound connections (every boto3 call) go only to AWS endpoint names on
# public addresses and to LOCAL_RUNTIME_URL (environments/outbound.py). PORTAL_OUTBOUND_ALLOW
# adds "host:port" places: an HTTPS proxy, the private DNS names of VPC interface endpoints.
PORTAL_OUTBOUND_GUARD = env_bool("PORTAL_OUTBOUND_GUARD", True)
# Alerts (alerts/): a chat webhook told when an endpoint needs attention, a deployment fails and
# an endpoint recovers; it takes {"text": ...} JSON (Slack's incoming webhooks, Mattermost,
# Rocket.Chat, Google Chat). Its URL holds a token, so it is set here, never in the database;
# the outbound guard lets the portal reach its host. Empty: no alerts.
PORTAL_ALERT_WEBHOOK_URL = os.environ.get("PORTAL_ALERT_WEBHOOK_URL", "").strip()
# Where people open the portal (https://portal.example.com): alerts link to the endpoint's page.
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "").strip().rstrip("/")
# A failed try waits this long, twice as long after each further failure, up to an hour.
ALERT_FIRST_BACKOFF_SECONDS = float(os.environ.get("ALERT_FIRST_BACKOFF_SECONDS", "30"))
PORTAL_OUTBOUND_ALLOW = env_list("PORTAL_OUTBOUND_ALLOW", "")

# Static AWS keys on an environment: off. If ever turned on they must be encrypted with
# PORTAL_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first), never SECRET_KEY; the
# deploy check refuses one without the other.
PORTAL_ALLOW_STATIC_KEYS = env_bool("PORTAL_ALLOW_STATIC_KEYS")
PORTAL_ENCRYPTION_KEYS = env_list("PORTAL_ENCRYPTION_KEYS", "")

# Where `make backup` writes and `make restore` looks (portal/management/backups.py).
BACKUP_DIR = Path(os.environ.get("BACKUP_DIR", VAR_DIR / "backups"))

# How long /healthz waits for each dependency before calling it unreachable.
HEALTHZ_TIMEOUT_SECONDS = float(os.environ.get("HEALTHZ_TIMEOUT_SECONDS", "2"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # At DEBUG these log request parameters, i.e. payloads and prompts.
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # Sign-in lockouts and other security events (accounts/throttle.py).
        "portal.security": {"level": "INFO"},
    },
}
