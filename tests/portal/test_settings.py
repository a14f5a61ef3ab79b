"""Settings come from the environment, with defaults that run on a bare machine."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly these variables set."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "DEBUG",
            "PYTEST_VERSION",
        }
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_defaults_are_sqlite_a_filesystem_broker_and_no_debug(tmp_path) -> None:
    result = run_python(
        "from portal import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG)",
        PORTAL_VAR_DIR=str(tmp_path),
    )

    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://localhost//",
        "False",
    ], result.stderr
    assert (tmp_path / "broker" / "out").is_dir()


def test_a_test_session_and_its_workers_use_a_broker_folder_apart_from_make_run(tmp_path) -> None:
    code = "from portal import settings as s; print(s.BROKER_DIR / 'out')"

    running = run_python(code, PORTAL_VAR_DIR=str(tmp_path)).stdout.strip()
    testing = run_python(code, PORTAL_VAR_DIR=str(tmp_path), PYTEST_VERSION="9").stdout.strip()

    assert running == str(tmp_path / "broker" / "out")
    assert testing == str(tmp_path / "test-broker" / "out")


def test_secret_key_is_generated_once_into_var_and_kept_private(tmp_path) -> None:
    code = "from portal import settings as s; print(s.SECRET_KEY)"

    first = run_python(code, PORTAL_VAR_DIR=str(tmp_path)).stdout.strip()
    second = run_python(code, PORTAL_VAR_DIR=str(tmp_path)).stdout.strip()

    assert len(first) >= 50
    assert first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_environment_variables_override_the_defaults(tmp_path) -> None:
    result = run_python(
        "from portal import settings as s; d = s.DATABASES['default'];"
        "print(d['ENGINE'], d['NAME'], s.CELERY_BROKER_URL, s.DEBUG, s.ALLOWED_HOSTS,"
        " s.SECRET_KEY)",
        PORTAL_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/portal",
        REDIS_URL="redis://127.0.0.1:6379/1",
        DEBUG="yes",
        ALLOWED_HOSTS="portal.example.com, ml.example.com",
        SECRET_KEY="from-the-environment",
    )

    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "portal",
        "redis://127.0.0.1:6379/1",
        "True",
        "['portal.example.com',",
        "'ml.example.com']",
        "from-the-environment",
    ], result.stderr
    assert not (tmp_path / "secret_key").exists()


def production_environment() -> dict[str, str]:
    """This environment as production would have it: without the browser tests' async opt-out."""
    environment = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.production")
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return environment


def test_production_settings_pass_check_deploy_with_no_warnings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_no_migration_is_missing() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout


def test_plotly_js_is_served_from_the_plotly_package(client_for) -> None:
    response = client_for("viewer").get("/static/vendor/plotly/plotly.min.js")

    assert response.status_code == 200
    assert b"plotly.js" in b"".join(response.streaming_content)[:2000]


def test_htmx_is_served_from_static_and_loaded_by_every_page(client_for) -> None:
    page = client_for("viewer").get("/").content.decode()
    script = page.split('<script src="')[1].split('"')[0]

    assert script.startswith("/static/django_htmx/htmx")
    assert client_for("viewer").get(script).status_code == 200
    assert '"allowEval":false' in page and '"allowScriptTags":false' in page


def test_pages_carry_a_strict_content_security_policy(client_for) -> None:
    response = client_for("viewer").get("/")
    policy = response["Content-Security-Policy"]

    # django-csp adds a nonce only to responses whose templates use one; ours load scripts by src.
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="needs Debian's docker-compose")
def test_docker_compose_file_is_valid() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
