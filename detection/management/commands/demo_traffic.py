import json
import time
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand

from modelops.ml import synthetic
from modelops.ml.schema import FEATURES

CHUNK = 1_000


class Command(BaseCommand):
    help = (
        "Replay generated transactions against the running API at a few per second, drifting after a "
        "while, so the queue fills and the monitoring shows a drift (make run starts it; DEMO_TRAFFIC=0 does not)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/detect-fraud")
        # Enough rows for a minute's window to count (MONITOR_MIN_TRANSACTIONS), and for PSI to show drift, not chance.
        parser.add_argument("--rate", type=float, default=8.0, help="Transactions per second")
        parser.add_argument("--drift-after", type=float, default=300.0, help="Seconds of ordinary traffic first")
        parser.add_argument("--drift", type=float, default=4.0, help="Standard deviations the features then shift by")
        parser.add_argument("--seconds", type=float, default=0.0, help="Stop after this long (0: never)")

    def handle(self, *args, url, rate, drift_after, drift, seconds, **options):
        try:
            sent = self._replay(url, rate=rate, drift_after=drift_after, drift=drift, seconds=seconds)
        except KeyboardInterrupt:  # make run's Ctrl-C reaches this process too
            return
        self.stdout.write(f"{sent} transactions sent")

    def _replay(self, url: str, *, rate: float, drift_after: float, drift: float, seconds: float) -> int:
        self._wait_for_server(url)
        started = time.monotonic()
        sent = chunk = 0
        while not seconds or time.monotonic() - started < seconds:
            drifting = time.monotonic() - started >= drift_after
            # At the dataset's fraud rate, as the first model learned it: its alert rate is the expected one.
            frame = synthetic.generate(rows=CHUNK, seed=1_000 + chunk, drift=drift if drifting else 0.0, days=0.05)
            chunk += 1
            if drifting:
                frame = frame.iloc[CHUNK // 2 :]  # the shift grows along a file: its later half is well moved
            for row in frame[list(FEATURES)].itertuples(index=False):
                if seconds and time.monotonic() - started >= seconds:
                    break
                if time.monotonic() - started >= drift_after and not drifting:
                    break  # the drift starts: the next chunk is drifted
                self._post(url, dict(zip(FEATURES, row, strict=True)))
                sent += 1
                time.sleep(1 / rate)
        return sent

    def _wait_for_server(self, url: str) -> None:
        health = url.split("/detect-fraud")[0] + "/healthz"
        for _ in range(120):
            try:
                with urllib.request.urlopen(health, timeout=2):
                    return
            except OSError:
                time.sleep(0.5)

    def _post(self, url: str, body: dict) -> None:
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            self.stderr.write(f"demo traffic: {exc}")
            time.sleep(2)  # the server is starting or restarting
