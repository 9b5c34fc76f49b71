from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from modelops.ml import synthetic


class Command(BaseCommand):
    help = "Write a synthetic labelled data file shaped like the ULB/Kaggle credit-card dataset."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=284_807)
        parser.add_argument("--fraud-rate", type=float, default=0.00172)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--drift", type=float, default=0.0, help="Shift of the feature distributions over time")
        parser.add_argument("--start-time", type=float, default=0.0, help="Time of the first transaction, in seconds")
        parser.add_argument("--out", required=True, help="CSV file to write")

    def handle(self, *args, rows, fraud_rate, seed, drift, start_time, out, **options):
        try:
            frame = synthetic.generate(rows=rows, fraud_rate=fraud_rate, seed=seed, drift=drift, start_time=start_time)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside it under a name the scan does not list, then renamed: a scan of the
        # incoming folder never reads half a file.
        partial = path.with_name(f".{path.name}.partial")
        synthetic.write_csv(frame, partial)
        partial.replace(path)
        self.stdout.write(f"wrote {len(frame)} rows ({int(frame['Class'].sum())} frauds, seed {seed}) to {path}")
