"""How fast the review pages answer with many transactions stored.

Fills a database with N scored transactions (default 1,000,000; about 0.5 % flagged) and some
analyst decisions, then times the review pages in-process (Django's test client, signed in):
the queue's first page, a page deep in the queue by its cursor, the filtered views, the counts
and a transaction page. Prints the median and the slowest of the repeated requests, the
queries each page makes, and SQLite's or PostgreSQL's plan for the queue query.

    .venv/bin/python bench/review_queue.py                        # SQLite in var/bench-queue
    .venv/bin/python bench/review_queue.py --database-url postgres://postgres@127.0.0.1:5432/fraud_queue

The rows are random (scores from a beta distribution); only their number and shape matter.
A second run reuses the filled database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-queue"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--no-analyze", action="store_true", help="PostgreSQL: time the pages before the tables are analysed"
    )
    return parser.parse_args()


def setup_django(args: argparse.Namespace) -> None:
    os.environ["DATA_DIR"] = args.data_dir
    os.environ["REQUEST_LOG_LEVEL"] = "WARNING"
    os.environ["LOG_LEVEL"] = "WARNING"
    # SQLite in the folder unless --database-url names a database, whatever the caller's
    # environment says: the script writes a million rows.
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fraudsite.settings")
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", verbosity=0, interactive=False)


def fill(rows: int) -> None:
    import numpy as np

    from bench.harness import store
    from detection.models import Transaction
    from modelops.models import Deployment, ModelVersion

    have = Transaction.objects.count()
    if have >= rows:
        print(f"database holds {have:,} transactions already")
        return
    # Scores are stored only as the primary version's: the database's own if it has one, else
    # one made up here (no artifact is behind it, and the queue's pages never load it).
    version = ModelVersion.objects.primary().first()
    if version is None:
        version, _ = ModelVersion.objects.get_or_create(
            version=1, defaults={"artifact": "bench.json", "sha256": "0" * 64, "threshold": 0.3}
        )
        Deployment.objects.create(version=version, role=Deployment.Role.PRIMARY)
    rng = np.random.default_rng(1)
    chunk = 10_000
    started = time.perf_counter()
    for start in range(have, rows, chunk):
        n = min(chunk, rows - start)
        values = rng.normal(size=(n, 30))
        values[:, 0] = np.abs(values[:, 0]) * 80_000
        values[:, -1] = np.abs(values[:, -1]) * 90
        scores = rng.beta(0.3, 12, size=n)  # about 0.6 % at or above the threshold, 0.3
        contributions = [[{"feature": f"V{k}", "value": 0.0, "contribution": 0.1} for k in (14, 10, 17, 4, 12)]] * n
        store(version, values, scores, contributions, source="batch")
        done = start + n
        if done % 100_000 == 0 or done == rows:
            print(f"  {done:,} rows stored ({time.perf_counter() - started:.0f} s)", flush=True)


def label_some() -> None:
    from django.contrib.auth import get_user_model

    from detection import reviews
    from detection.models import Prediction, Review

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True})
    if Review.objects.exists():
        return
    # Half the flagged transactions reviewed: the queue still has work, and walks past the rest.
    flagged = list(Prediction.objects.filter(is_fraud=True).values_list("transaction_id", flat=True))
    flagged = flagged[: len(flagged) // 2]
    for i in range(0, len(flagged), 500):
        label = "fraud" if i % 1000 == 0 else "legitimate"
        reviews.decide(transaction_ids=flagged[i : i + 500], label=label, user=user)


def timed(client, url: str, repeat: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times), max(times), len(queries)


def main() -> None:
    args = parse_args()
    setup_django(args)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from detection.forms import QueueFilter
    from detection.models import Prediction, Transaction
    from detection.selectors import cursor_of, queue_rows

    fill(args.rows)
    label_some()
    if connection.vendor == "postgresql" and not args.no_analyze:
        # What autovacuum does soon after a bulk load; without statistics PostgreSQL plans the
        # counts as if most rows were flagged (--no-analyze shows those plans and their time).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    total = Transaction.objects.count()
    flagged = Prediction.objects.filter(is_fraud=True).count()
    print(f"{connection.vendor}: {total:,} transactions, {flagged:,} flagged")

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench"))
    deep = QueueFilter({"state": "all", "flagged": "all"})
    deep.is_valid()
    row = queue_rows(filters=deep.cleaned_data)[500_000 if total > 600_000 else total // 2]
    some_id = Transaction.objects.order_by("-id").values_list("id", flat=True)[total // 3]
    today = Transaction.objects.order_by("created_at").values_list("created_at", flat=True).first().date()
    pages = {
        "queue, first page (flagged, unreviewed)": "/review/",
        "queue, 200 per page": "/review/?per_page=200",
        "queue, all rows, by cursor half way down": f"/review/?state=all&flagged=all&after={cursor_of(row)}",
        "queue, confirmed fraud": "/review/?state=fraud",
        "queue, amount 100 to 200, all rows": "/review/?state=all&flagged=all&amount_min=100&amount_max=200",
        "queue, amount 100 to 100.5, all rows": "/review/?state=all&flagged=all&amount_min=100&amount_max=100.5",
        "queue, amount from 0 (every row), all rows": "/review/?state=all&flagged=all&amount_min=0",
        # The day the rows were stored: every row is in the range, the worst case for a date.
        "queue, one day holding every row, all rows": f"/review/?state=all&flagged=all&since={today}&until={today}",
        "queue, one day holding every row, flagged": f"/review/?since={today}&until={today}",
        "transaction page": f"/review/{some_id}/",
    }
    print(f"{'page':<45} {'median ms':>10} {'max ms':>8} {'queries':>8}")
    for name, url in pages.items():
        median, worst, queries = timed(client, url, args.repeat)
        print(f"{name:<45} {median:>10.1f} {worst:>8.1f} {queries:>8}")

    plan_filter = QueueFilter({})
    plan_filter.is_valid()
    sql, params = queue_rows(filters=plan_filter.cleaned_data)[:50].query.sql_with_params()
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(explain + sql, params)
        print("plan of the first page's query:")
        for line in cursor.fetchall():
            print("  ", line[-1])


if __name__ == "__main__":
    main()
