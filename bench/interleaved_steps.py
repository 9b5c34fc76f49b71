"""What the main steps of POST /detect-fraud cost when each runs between requests, as in the
app, against what it costs run alone in a loop (warm), inside one process, without the network:

    .venv/bin/python bench/interleaved_steps.py --data-dir var/bench [--rounds 15]

Each round times 200 calls of every line in turn: the constant DRF endpoint alone, the constant
endpoint followed by one step (parsing the body, scoring the row, storing it), and each step
alone. "In a request" is the second line less the first: what the step adds to a request that
also runs the rest of Django. Prints the median over the rounds of the CPU time per call, the
background checkpoint thread's included (the web workers pay it too). Uses
the data folder of bench/http_scoring.py (its database and active model); rows are stored there.

Under callgrind, --callgrind LINE counts the instructions of 200 calls of one line instead:

    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/interleaved_steps.py \\
        --data-dir var/bench --callgrind "constant + store"     # then: instructions / 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import TRANSACTION, store
from bench.request_cost import post, set_environment

CALLS = 200


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="var/bench")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--callgrind", metavar="LINE", help='count one line\'s instructions, e.g. "store"')
    args = parser.parse_args()
    set_environment(args.data_dir)
    import django

    django.setup()
    import orjson

    from detection import parsing
    from fraudsite.wsgi import application
    from modelops.model_cache import serving_model

    body = json.dumps(TRANSACTION).encode()
    for _ in range(50):  # loads the model, warms the caches
        post(application, "/detect-fraud", body)
    model = serving_model()
    values = parsing.parse(orjson.loads(body))[0].values
    scores, contributions = model.bundle.score(values)

    def constant():
        post(application, "/bench/constant", body)

    steps = {
        "parse": lambda: parsing.parse(orjson.loads(body)),
        "score": lambda: model.bundle.score(values),
        "store": lambda: store(model, values, scores, contributions),
    }
    lines = {"constant endpoint": constant}
    for name, step in steps.items():
        lines[f"constant + {name}"] = lambda step=step: (constant(), step())
        lines[name] = step

    if args.callgrind:
        call = lines[args.callgrind]
        for _ in range(20):
            call()
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
        for _ in range(CALLS):
            call()
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
        return

    spent: dict[str, list[float]] = {name: [] for name in lines}
    for _ in range(args.rounds):
        for name, call in lines.items():
            started = time.process_time()
            for _ in range(CALLS):
                call()
            spent[name].append((time.process_time() - started) / CALLS * 1e6)
    median = {name: statistics.median(times) for name, times in spent.items()}

    out = sys.stdout.write
    out(f"median of {args.rounds} rounds of {CALLS} calls, CPU us per call\n")
    out(f"constant endpoint alone: {median['constant endpoint']:.0f}\n")
    for name in steps:
        added = median[f"constant + {name}"] - median["constant endpoint"]
        alone = median[name]
        out(f"{name:>6}: alone {alone:5.0f}, in a request {added:5.0f} ({added / alone:.1f} times)\n")


if __name__ == "__main__":
    main()
