#!/usr/bin/env bash
# A qcluster SIGKILLed mid-training, with the ORM broker (SQLite, no REDIS_URL): does django-q2
# hand the killed task out again, and does the re-run take over the dead run? Q_TIMEOUT=60 and
# Q_RETRY=70 so the redelivery comes after 70 s instead of 35 min. Prints the runs, versions
# and data files once a run has succeeded (or after 120 s).
#
#     drills/killed_worker_redelivery.sh       (PY=/path/to/python to use another interpreter)
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_DIR=$(mktemp -d)
export DATA_DIR DJANGO_SETTINGS_MODULE=fraudsite.settings Q_TIMEOUT=60 Q_RETRY=70 TRAINING_HEARTBEAT_SECONDS=1
unset DATABASE_URL REDIS_URL S3_BUCKET_NAME
db() { "$PY" - "$DATA_DIR/db.sqlite3" "$1" <<'PYEOF'
import sqlite3, sys
for row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]):
    print("|".join(map(str, row)))
PYEOF
}
"$PY" manage.py migrate --noinput >/dev/null
"$PY" manage.py generate_data --rows 20000 --fraud-rate 0.02 --seed 3 --out "$DATA_DIR/d.csv" >/dev/null
mkdir -p "$DATA_DIR/bucket/incoming" && cp "$DATA_DIR/d.csv" "$DATA_DIR/bucket/incoming/a.csv"
"$PY" manage.py scan_bucket
TRAIN_N_ESTIMATORS=3000 setsid "$PY" manage.py qcluster >"$DATA_DIR/q1.log" 2>&1 &
first=$!
"$PY" manage.py shell --no-imports -c "from modelops import tasks; tasks.enqueue_retrain(trigger='schedule')"
for _ in $(seq 1 200); do
  [ "$(db "select count(*) from modelops_trainingrun where status='running' and heartbeat_at > started_at")" = 1 ] && break
  sleep 0.3
done
kill -9 -- "-$first"
killed=$(date +%s)
echo "killed the cluster mid-training; runs: $(db 'select id, status from modelops_trainingrun')"
# A new cluster, as a supervisor would start; nothing is queued by hand.
TRAIN_N_ESTIMATORS=40 setsid "$PY" manage.py qcluster >"$DATA_DIR/q2.log" 2>&1 &
second=$!
for _ in $(seq 1 120); do
  [ "$(db "select count(*) from modelops_trainingrun where status='succeeded'")" = 1 ] && break
  sleep 1
done
echo "$(( $(date +%s) - killed )) s after the kill:"
db "select 'run', id, status, error from modelops_trainingrun"
db "select 'version', version, status from modelops_modelversion"
db "select 'data file', key, status from modelops_datafile"
kill -TERM "$second"; sleep 5; kill -9 -- "-$second" 2>/dev/null
rm -rf "$DATA_DIR"
