#!/usr/bin/env bash
# Serve the app under gunicorn until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
PORT="${PORT:-8000}"
WORKERS="${WEB_CONCURRENCY:-2}"

echo
echo "  Fraud detection is at http://127.0.0.1:${PORT}/  (score a transaction)"
echo "  API:   curl -X POST http://127.0.0.1:${PORT}/detect-fraud -H 'Content-Type: application/json' -d @transaction.json"
echo "  Admin: http://127.0.0.1:${PORT}/admin/  (sign-in printed above)"
echo "  Stop with Ctrl-C."
echo

# Sync workers, one per core: scoring is CPU-bound and releases nothing to overlap with.
exec "$BIN/gunicorn" fraudsite.wsgi \
  --bind "127.0.0.1:${PORT}" \
  --workers "$WORKERS" \
  --access-logfile "${ACCESS_LOG:--}" \
  --graceful-timeout 10
