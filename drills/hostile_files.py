"""A scan that meets a 1 GB data file beside a good one: the big file must be rejected unread and
the good one accepted; prints each decision, the scan's time and the process's peak RSS.

Runs on a fresh SQLite database and local folders; ``--accepted-mb N`` adds a valid file of N MB
under MAX_DATA_FILE_BYTES, to show what reading and validating one costs.

    .venv/bin/python drills/hostile_files.py [--gigabytes 1] [--accepted-mb 150]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_file(path: Path, size: int, rows_block: str, header: str) -> None:
    """Header, then the block of rows repeated up to ``size`` bytes, written 1 MB at a time."""
    block = rows_block.encode()
    repeat = max(1, (1 << 20) // len(block))
    chunk = block * repeat
    with path.open("wb") as handle:
        handle.write(f"{header}\n".encode())
        written = len(header) + 1
        while written < size:
            piece = chunk if size - written >= len(chunk) else block
            handle.write(piece)
            written += len(piece)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--accepted-mb", type=float, default=0.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data_dir:
        os.environ.update(DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="fraudsite.settings", LOG_LEVEL="WARNING")
        for name in ("DATABASE_URL", "S3_BUCKET_NAME", "MAX_DATA_FILE_BYTES"):
            os.environ.pop(name, None)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from modelops import scan
        from modelops.ml import synthetic
        from modelops.models import DataFile

        call_command("migrate", verbosity=0)
        incoming = Path(data_dir) / "bucket" / "incoming"
        incoming.mkdir(parents=True)
        buffer = io.StringIO()
        synthetic.write_csv(synthetic.generate(rows=2_000, fraud_rate=0.02, seed=1), buffer)
        header, _, rows = buffer.getvalue().partition("\n")
        (incoming / "good.csv").write_text(buffer.getvalue())
        write_file(incoming / "huge.csv", int(args.gigabytes * (1 << 30)), rows, header)
        if args.accepted_mb:
            write_file(incoming / "large_valid.csv", int(args.accepted_mb * (1 << 20)), rows, header)

        before = peak_rss_mb()
        started = time.monotonic()
        result = scan.scan_incoming()
        seconds = time.monotonic() - started
        for data_file in DataFile.objects.order_by("key"):
            print(
                f"{data_file.key}: {data_file.size / (1 << 20):,.0f} MB, {data_file.status}"
                + (f", {data_file.rows:,} rows" if data_file.rows else "")
                + (f": {data_file.error}" if data_file.error else "")
            )
        print(
            f"scan: {result.summary()} in {seconds:.1f} s; MAX_DATA_FILE_BYTES {settings.MAX_DATA_FILE_BYTES:,}; "
            f"peak RSS {before:,.0f} MB before the scan, {peak_rss_mb():,.0f} MB after"
        )


if __name__ == "__main__":
    main()
