"""gunicorn settings that need code: a dead worker's metric files are marked, so that its gauges
drop out of /metrics while its counters still count."""

from prometheus_client import multiprocess


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
