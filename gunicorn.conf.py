"""Gunicorn settings shared by `make run` (Procfile), docker-compose and `make loadtest`; gunicorn
reads this file from the working directory. Command lines add only the bind address and, in
compose, the number of processes."""

# Threads with two lanes: pages first, and at most threads - 1 busy with invocations
# (portal/serving.py), so a page never queues behind people prompting models.
worker_class = "portal.serving.PriorityThreadWorker"
workers = 2
threads = 4
# A playground invocation may take the container's 60 s and then some.
timeout = 90
accesslog = "-"
