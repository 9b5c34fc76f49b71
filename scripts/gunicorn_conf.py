"""How `make run` serves the app under gunicorn; the HTTP benchmark serves it with this file too, so
that it measures the server as deployed. Environment: PORT, WEB_CONCURRENCY, ACCESS_LOG."""

import os

from prometheus_client import multiprocess

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
# Sync workers, one per core: scoring is CPU-bound and releases nothing to overlap with.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Off unless asked for: the app's request log already has a line per request, with its id and the
# model version; ACCESS_LOG=- adds gunicorn's own line on stdout.
accesslog = os.environ.get("ACCESS_LOG") or None
# A worker silent this long (stuck in a request) is killed and replaced.
timeout = 30
graceful_timeout = 10
# gunicorn would put its control socket in the home folder, outside DATA_DIR, at a path that every
# gunicorn of the user shares; nothing here uses it.
control_socket_disable = True


def child_exit(server, worker):
    """A dead worker's metric files are marked, so that its gauges drop out of /metrics while its
    counters still count."""
    multiprocess.mark_process_dead(worker.pid)
