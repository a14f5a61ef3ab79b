"""Run every benchmark in a throwaway workspace (its own SQLite database and var/ folder)."""

import os
import sys
import tempfile


def main() -> None:
    workspace = tempfile.mkdtemp(prefix="portal-bench-")
    os.environ["PORTAL_VAR_DIR"] = workspace
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.pop("DATABASE_URL", None)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench import insights, pages, polling, runtime

    print(f"Endpoint Portal benchmarks  (Python {sys.version.split()[0]}, workspace {workspace})\n")
    pages.run()
    polling.run()
    runtime.run()
    insights.run()


if __name__ == "__main__":
    main()
