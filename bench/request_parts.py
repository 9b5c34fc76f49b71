"""Where one POST /detect-fraud spends its time inside the process: the request goes straight to
the WSGI application (no network), and the main steps of the scoring path are timed as they run.

    .venv/bin/python bench/request_parts.py --data-dir var/bench [--requests 5000]

Uses the data folder of bench/http_scoring.py (its database and active model); rows are stored
there. Wall-clock microseconds per request, averaged; nested steps are included in their parent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

spent: dict[str, float] = {}  # label -> seconds; labels in the order they are printed


def timed(owner, name: str, label: str) -> None:
    """Wrap ``owner.name`` so that its time is added to ``spent[label]``."""
    function = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)
    spent[label] = 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="var/bench")
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    from bench.request_cost import post, set_environment

    set_environment(args.data_dir, SQLITE_CHECKPOINT_SECONDS="0")  # no thread beside the timed loop
    import django

    django.setup()
    from detection import api, parsing, services
    from fraudsite.wsgi import application
    from modelops.ml import synthetic
    from modelops.ml.artifact import ModelBundle
    from modelops.ml.schema import FEATURES

    timed(parsing, "decode", "decode the JSON body")
    timed(parsing, "parse", "validate")
    timed(api, "score_transactions", "score_transactions")
    timed(ModelBundle, "score", "  score and explain (model)")
    timed(services, "store_scored", "  store both rows")

    frame = synthetic.generate(rows=1, fraud_rate=0.01, seed=11)
    body = json.dumps({k: float(v) for k, v in zip(FEATURES, frame[list(FEATURES)].to_numpy()[0], strict=True)})
    body = body.encode()

    for _ in range(100):  # loads the model, warms the caches
        post(application, "/detect-fraud", body)
    spent.update(dict.fromkeys(spent, 0.0))
    started = time.perf_counter()
    for _ in range(args.requests):
        post(application, "/detect-fraud", body)
    total = time.perf_counter() - started
    out = sys.stdout.write
    out(f"POST /detect-fraud, {args.requests} requests in-process: {total / args.requests * 1e6:,.0f} us each\n")
    for label, seconds in spent.items():
        out(f"  {label:<34} {seconds / args.requests * 1e6:7.1f} us\n")
    rest = total - sum(v for k, v in spent.items() if not k.startswith(" "))
    out(f"  {'Django, DRF, middleware, response':<34} {rest / args.requests * 1e6:7.1f} us\n")


if __name__ == "__main__":
    main()
