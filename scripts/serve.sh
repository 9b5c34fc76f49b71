#!/usr/bin/env bash
# Serve the app under gunicorn with the task cluster (scheduled scans and retraining) beside it.
# One Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
export PORT="${PORT:-8000}"
# The local demo's API takes requests without a key, as the original app did. In production
# leave this unset and give each client a key: manage.py api_key create NAME
export SCORING_API_OPEN="${SCORING_API_OPEN:-true}"
# The demo replays generated traffic (drifting after five minutes) and summarises it in windows of
# a minute, so the queue, the monitoring charts and a drift event appear within minutes.
DEMO_TRAFFIC="${DEMO_TRAFFIC:-1}"
if [ "$DEMO_TRAFFIC" != 0 ]; then
  export MONITOR_WINDOW_MINUTES="${MONITOR_WINDOW_MINUTES:-1}"
fi
# Written here, after the settings above, so the cluster's schedules match them.
"$BIN/python" manage.py sync_schedules
# Each worker keeps its metrics in files here, which /metrics sums; emptied at each start, as a
# previous run's files would be counted again.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-${DATA_DIR:-var}/prometheus}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

# The task cluster runs in a process group of its own: a signal sent to this script's group
# (Ctrl-C, or kill/timeout/a supervisor signalling the group) would otherwise reach all of its
# processes at once, and a SIGTERM so delivered leaves django-q2's cluster hanging. Whatever
# ends this script, the cluster's main process alone is asked to stop, its own graceful path.
# Its work (batch jobs, shadows, retraining) runs at a lower priority than the web workers' on
# shared cores, so a single request is not kept waiting behind a batch (CLUSTER_NICE=0: equal).
setsid nice -n "${CLUSTER_NICE:-10}" "$BIN/python" manage.py qcluster &
cluster=$!
traffic=""
if [ "$DEMO_TRAFFIC" != 0 ]; then
  "$BIN/python" manage.py demo_traffic --url "http://127.0.0.1:${PORT}/detect-fraud" >/dev/null &
  traffic=$!
fi
trap 'kill -TERM "$cluster" $traffic 2>/dev/null || true; wait "$cluster" 2>/dev/null || true' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

echo
echo "  Fraud detection is at http://127.0.0.1:${PORT}/  (sign in as admin; the password is printed above and kept in ${DATA_DIR:-var}/demo_password)"
echo "  Review queue: http://127.0.0.1:${PORT}/review/   Models: http://127.0.0.1:${PORT}/models/"
echo "  API:   POST http://127.0.0.1:${PORT}/detect-fraud  (a curl example is in the README)"
echo "  Admin: http://127.0.0.1:${PORT}/admin/  (the same sign-in)"
echo "  API keys: $( [ "$SCORING_API_OPEN" = true ] && echo "not required in this demo (SCORING_API_OPEN=true)" || echo "required: manage.py api_key create NAME")"
echo "  Docs: http://127.0.0.1:${PORT}/api/docs/   Health: /healthz, /readyz   Metrics: /metrics   Monitoring: /monitoring/"
echo "  New labelled data: drop a CSV into ${DATA_DIR:-var}/bucket/incoming/ (or the S3 bucket's incoming/)"
echo "  Demo traffic: $( [ "$DEMO_TRAFFIC" != 0 ] && echo "about eight generated transactions a second, drifting after 5 minutes (DEMO_TRAFFIC=0: none)" || echo off)"
echo "  Stop with Ctrl-C."
echo

# Settings (workers, access log, timeouts) are in scripts/gunicorn_conf.py.
"$BIN/gunicorn" fraudsite.wsgi --config scripts/gunicorn_conf.py
