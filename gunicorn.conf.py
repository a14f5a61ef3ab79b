"""Gunicorn settings shared by `make run` (Procfile), docker-compose and `make loadtest`; gunicorn
reads this file from the working directory. Command lines add only the bind address and, in
compose, the number of processes."""

import os

# Threads with two lanes: pages first, and at most threads - 1 busy with invocations
# (portal/serving.py), so a page never queues behind people prompting models.
worker_class = "portal.serving.PriorityThreadWorker"
# Two processes suit the 2-core machines this is measured on (make loadtest); on a bigger machine
# set WEB_CONCURRENCY (gunicorn's own variable), e.g. to the number of cores.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
# A playground invocation may take the container's 60 s and then some.
timeout = 90
accesslog = "-"


def post_worker_init(worker: object) -> None:
    """Each web process makes its local-runtime client before it takes a request, so the first
    invocation answers as quickly as the rest (it took 150-200 ms longer, shown as overhead)."""
    from environments.backends.local import LocalBackend

    try:
        LocalBackend.warm_up()
    except Exception:  # a client made later says what is wrong, in context
        worker.log.warning("The local runtime's client could not be made now", exc_info=True)
