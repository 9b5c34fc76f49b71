"""What the benchmarks that run the app share: the environment of its processes, manage.py,
gunicorn on a free port (ready before it is used, stopped afterwards), posting JSON to it from
client threads, and the latency percentile they print."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
TRANSACTION = {"Time": 100.0, **{f"V{i}": 0.0 for i in range(1, 29)}, "Amount": 12.5}

# The scoring API as the benchmarks call it: without an API key (one more indexed query per
# request with one), without a log line per request (as with gunicorn's access log off), and
# without the per-client rate limit (a handful of clients send thousands of requests a second).
SERVING = {
    "SCORING_API_OPEN": "true",
    "REQUEST_LOG_LEVEL": "WARNING",
    "SCORING_RATE_LIMIT": "off",
}


def environment(
    data_dir: str | Path,
    *,
    database_url: str = "",
    settings: str = "fraudsite.settings",
    caller_tuning: bool = True,
    **extra: str,
) -> dict[str, str]:
    """The environment of the app's processes in a benchmark: the caller's, without what would
    point them at a deployment (Redis, a bucket), on ``data_dir`` and ``database_url`` (SQLite in
    ``data_dir`` when empty), with SERVING and ``extra``. ``caller_tuning=False`` leaves out the
    caller's queue, training and retraining settings too, for figures that should not depend on
    how the caller has tuned those."""
    dropped = ("S3_",) if caller_tuning else ("S3_", "Q_", "TRAIN_", "RETRAIN_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped) and key != "REDIS_URL"}
    env.update({"DJANGO_SETTINGS_MODULE": settings, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url})
    env.update({**SERVING, **extra})
    return env


def deployed_environment(
    data_dir: str | Path, *, database_url: str = "", root: Path = ROOT, **extra: str
) -> tuple[dict[str, str], str]:
    """The environment of the app as `make run` serves it (SERVING's shortcuts undone: a key
    required, the request log and rate limit on, metrics in a multiprocess folder emptied as
    serve.sh empties it), its database migrated with a model by the tree at ``root``, and a new
    API key: (env, key)."""
    env = environment(data_dir, database_url=database_url, **extra)
    for name in SERVING:
        env.pop(name)
    manage(env, "migrate", "--noinput", root=root)
    manage(env, "ensure_model", root=root, timeout=900)
    command = [sys.executable, str(Path(root) / "manage.py"), "api_key", "create", "benchmark"]
    key = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True).stdout.strip()
    metrics = Path(data_dir) / "prometheus"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    return env, key


def store(model, values, scores, contributions, *, source: str = "api") -> list[int]:
    """In process, Django set up: store scored rows as POST /detect-fraud does, made by ``model``
    (a PrimaryModel or a ModelVersion: its id, sha256 and threshold)."""
    from django.utils import timezone

    from detection.storage import store_scored

    return store_scored(
        values=values,
        external_ids=[None] * len(values),
        client="",
        source=source,
        version_id=model.id,
        sha256=model.sha256,
        threshold=model.threshold,
        scores=scores,
        contributions=contributions,
        now=timezone.now(),
    )


def setup_django(env: dict) -> None:
    """Set up Django in this process on the environment ``env`` (see environment())."""
    os.environ.update(env)
    import django

    django.setup()


def extra_versions(count: int, *, rows: int = 100_000) -> list:
    """In process, Django set up: ``count`` recorded versions that are not deployed, the newest
    first, each trained (as retraining would, the app's training settings, a seed of its own) on
    ``rows`` generated rows if the database holds too few."""
    from django.conf import settings

    from modelops.ml import synthetic, training
    from modelops.models import Deployment, ModelVersion
    from modelops.services import versions

    free = list(ModelVersion.objects.exclude(pk__in=Deployment.objects.values("version")).order_by("-version"))
    for seed in range(len(free), count):
        frame = synthetic.generate(rows=rows, seed=100 + seed)
        config = training.TrainConfig(**{**settings.FRAUD_TRAINING, "seed": seed})
        free.append(versions.record_version(result=training.train(frame, config)))
    return free[:count]


def fill(rows: int, *, chunk: int = 10_000, seed: int = 1) -> int:
    """In process, Django set up: store generated transactions, scored by the primary version as
    POST /detect-fraud stores them (random scores and made-up contributions), until the database
    holds ``rows``; how many it holds. The values are drawn as the model's features are, so a
    model scores them as it would real traffic, a chunk at a time."""
    import numpy as np

    from detection.models import Transaction
    from modelops.ml import synthetic
    from modelops.ml.schema import FEATURES
    from modelops.models import ModelVersion

    have = Transaction.objects.count()
    if have >= rows:
        return have
    version = ModelVersion.objects.primary().get()
    rng = np.random.default_rng(seed)
    frame = synthetic.generate(rows=chunk, seed=seed)[list(FEATURES)].to_numpy()
    contributions = [[{"feature": f"V{k}", "value": 0.0, "contribution": 0.1} for k in (14, 10, 17, 4, 12)]] * chunk
    started = time.perf_counter()
    for start in range(have, rows, chunk):
        n = min(chunk, rows - start)
        values = frame[rng.permutation(chunk)[:n]]
        store(version, values, rng.beta(0.3, 12, size=n), contributions[:n], source="batch")
        if (start + n) % 100_000 == 0 or start + n == rows:
            print(f"  {start + n:,} transactions stored ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def manage(env: dict, *args: str, timeout: float | None = None, root: Path = ROOT) -> None:
    """Run a manage.py command (of the tree at ``root``); its output is shown only if it fails."""
    command = [sys.executable, str(Path(root) / "manage.py"), *args]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(
    env: dict,
    *,
    app: str = "fraudsite.wsgi",
    workers: int = 2,
    worker_class: str = "sync",
    threads: int = 1,
    log: Path | None = None,
    ready_timeout: float = 60,
    root: Path = ROOT,
    as_deployed: bool = False,
):
    """gunicorn serving ``app`` (the app's WSGI module unless told) of the tree at ``root`` (this
    one unless told: another checkout to compare with) on a free port of 127.0.0.1, its output in
    ``log`` (discarded without one); yields (process, port) once it is ready, and stops it
    afterwards. ``as_deployed``: with `make run`'s settings (scripts/gunicorn_conf.py)."""
    port = free_port()
    output = log.open("wb") if log else subprocess.DEVNULL
    config = ("--config", str(root / "scripts" / "gunicorn_conf.py")) if as_deployed else ()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", app, *config, "--bind", f"127.0.0.1:{port}", "--no-control-socket"),
            *("--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads)),
        ],
        cwd=root,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own, so that no worker outlives the run
    )
    try:
        wait_ready(server, port, timeout=ready_timeout, log=log)
        yield server, port
    finally:
        server.terminate()
        with suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)  # gunicorn's own graceful timeout
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        if log:
            output.close()


def wait_ready(server: subprocess.Popen, port: int, *, timeout: float, log: Path | None) -> None:
    """Wait until GET /readyz answers 200: the database answers and a worker has loaded the
    active model. Raises, with the log if there is one, if the server exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        except OSError:  # not listening yet, or 503 until a model is active and loaded
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            output = f"\n{log.read_text(errors='replace')}" if log else ""
            raise RuntimeError(f"gunicorn did not become ready{output}")
        time.sleep(0.2)


def workers_of(master: int) -> list[int]:
    """The process ids of a gunicorn master's workers."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def post_json(port: int, payload, *, timeout: float) -> tuple[int, str]:
    """POST ``payload`` as JSON to /detect-fraud: (status, body), or (0, the error) when no HTTP
    answer came."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/detect-fraud",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def client_threads(count: int, request, stop) -> tuple[list[threading.Thread], list]:
    """``count`` client threads, not yet started, and the list they fill: client ``number`` calls
    ``request(number, sequence)`` for sequence 0, 1, 2... until ``stop`` (a threading or
    multiprocessing Event) is set, and appends what each call returns."""
    answers: list = []
    lock = threading.Lock()

    def client(number: int) -> None:
        for sequence in itertools.count():
            if stop.is_set():
                return
            answer = request(number, sequence)
            with lock:
                answers.append(answer)

    return [threading.Thread(target=client, args=(n,)) for n in range(count)], answers


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile, interpolated between the nearest values (never beyond the
    largest, as the "exclusive" method would be with fewer than 100 values); NaN below two."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) >= 2 else float("nan")
