"""How fast one shadow catches up: transactions score_shadows() scores and stores per second.

In process (no cluster, no web server): fills the database with --rows stored transactions
(default 200,000; generated rows scored by the primary, as the API stores them) unless it holds
them already, deploys one shadow version (trained here on 100,000 generated rows if the
database has none spare) with its watermark --rows transactions before the newest, and times
shadow_scoring.score_shadows() until it has caught up. Prints transactions/s, and the time spent
reading the rows (detection.stored_rows.read_after), scoring them (ModelBundle.predict_proba)
and in the rest (building and writing the predictions, the watermark, the commits). A second run
on the same database scores the same rows again, its earlier predictions deleted first.

    .venv/bin/python bench/shadow_catch_up.py --data-dir DIR
    .venv/bin/python bench/shadow_catch_up.py --data-dir DIR --database-url postgres://postgres@127.0.0.1:5432/bench_shadows
    .venv/bin/python bench/shadow_catch_up.py ... --chunk 20000 --profile   # another chunk size; cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import environment, extra_versions, fill, manage, setup_django  # noqa: E402


class Timer:
    """Wraps a function and adds up the wall time spent in it."""

    def __init__(self, owner, name: str):
        self.owner, self.name, self.seconds = owner, name, 0.0
        self.original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, name, timed)

    def restore(self) -> None:
        setattr(self.owner, self.name, self.original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-catch-up"))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=0, help="SHADOW_CHUNK_ROWS (the app's default if 0)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions by own time")
    args = parser.parse_args()

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    env = environment(args.data_dir, database_url=args.database_url, LOG_LEVEL="WARNING")
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_model", timeout=900)
    setup_django(env)
    from django.conf import settings
    from django.db import connection

    from detection import shadow_scoring, stored_rows
    from detection.models import Prediction, Transaction
    from modelops import model_cache
    from modelops.ml.artifact import ModelBundle
    from modelops.models import Deployment
    from modelops.services import deployments

    held = fill(args.rows)
    [shadow] = extra_versions(1)
    Deployment.objects.shadows().delete()  # a run killed before its end left its shadow deployed
    with connection.cursor() as cursor:  # an earlier run's predictions, without the ORM's cascade
        cursor.execute(f"DELETE FROM {Prediction._meta.db_table} WHERE model_version_id = %s", [shadow.pk])
    deployment = deployments.deploy_shadow(version_id=shadow.pk, actor="bench", reason="bench/shadow_catch_up.py")
    newest = Transaction.objects.order_by("-pk").values_list("pk", flat=True).first()
    start = Transaction.objects.order_by("-pk").values_list("pk", flat=True)[args.rows - 1] - 1
    Deployment.objects.filter(pk=deployment.pk).update(scored_through=start)
    settings.SHADOW_SETTLE_SECONDS = 0.0  # the rows were stored before the run: all settled
    if args.chunk:
        settings.SHADOW_CHUNK_ROWS = args.chunk
    model_cache.loaded(version_id=shadow.pk, sha256=shadow.sha256, name=shadow.artifact)  # loaded before the clock

    reading, scoring = Timer(stored_rows, "read_after"), Timer(ModelBundle, "predict_proba")
    profile = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profile:
        profile.enable()
    done = shadow_scoring.score_shadows(max_seconds=3600)
    if profile:
        profile.disable()
    seconds = time.perf_counter() - started
    reading.restore()
    scoring.restore()

    scored = done[shadow.version]
    stored = Prediction.objects.filter(model_version=shadow).count()
    caught_up = Deployment.objects.get(pk=deployment.pk).scored_through == newest
    deployments.stop_shadow(version_id=shadow.pk, actor="bench", reason="bench/shadow_catch_up.py done")
    rest = seconds - reading.seconds - scoring.seconds
    print(
        f"{connection.vendor}, {held:,} transactions stored; one shadow (v{shadow.version}) from "
        f"{args.rows:,} transactions before the newest, SHADOW_CHUNK_ROWS={settings.SHADOW_CHUNK_ROWS:,}"
    )
    print(
        f"scored and stored {scored:,} transactions in {seconds:.2f} s: {scored / seconds:,.0f} transactions/s "
        f"(caught up: {caught_up}; {stored:,} shadow predictions stored)"
    )
    print(
        f"  reading {reading.seconds:.2f} s ({reading.seconds / seconds:.0%}), scoring {scoring.seconds:.2f} s "
        f"({scoring.seconds / seconds:.0%}), writing and the rest {rest:.2f} s ({rest / seconds:.0%})"
    )
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
