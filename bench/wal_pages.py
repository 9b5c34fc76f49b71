"""Which pages one scored transaction makes SQLite write: the write-ahead log's frames appended by
each single-transaction POST /detect-fraud, by the table or index they belong to.

    .venv/bin/python bench/wal_pages.py --data-dir var/bench [--requests 50]

Uses the data folder of bench/http_scoring.py (its database and active model; rows are stored
there), in process, with no background checkpoint. Every page a commit writes costs it two
pwrite calls (the frame's header and the page), and a worker whose cache another worker's
commit made stale reads it again. Pages allocated after the map of pages was read (a table's
or index's new leaves) are counted as "new page".
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FRAME_HEADER, WAL_HEADER = 24, 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="var/bench")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    from bench.request_cost import post, set_environment

    set_environment(args.data_dir, SQLITE_CHECKPOINT_SECONDS="0")
    import django

    django.setup()
    from django.db import connection

    from fraudsite.wsgi import application
    from modelops.ml import synthetic
    from modelops.ml.schema import FEATURES

    frame = synthetic.generate(rows=1, fraud_rate=0.01, seed=11)
    row = frame[list(FEATURES)].to_numpy()[0]
    body = json.dumps({name: float(value) for name, value in zip(FEATURES, row, strict=True)}).encode()
    post(application, "/detect-fraud", body)  # loads the model
    database = Path(connection.settings_dict["NAME"])
    wal = Path(f"{database}-wal")
    # No checkpoint during the count: one would start the log over and hide the frames written.
    connection.connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with sqlite3.connect(database) as reader:
        owner = dict(reader.execute("SELECT pageno, name FROM dbstat"))
    page_size = connection.connection.execute("PRAGMA page_size").fetchone()[0]
    frame_size = FRAME_HEADER + page_size

    written: collections.Counter[str] = collections.Counter()
    for _ in range(args.requests):
        start = max(os.path.getsize(wal), WAL_HEADER)
        post(application, "/detect-fraud", body)
        with wal.open("rb") as log:
            log.seek(start)
            appended = log.read()
        for offset in range(0, len(appended) - frame_size + 1, frame_size):
            (page,) = struct.unpack(">I", appended[offset : offset + 4])
            written["page 1 (database header)" if page == 1 else owner.get(page, "new page")] += 1
    total = sum(written.values())
    print(f"{args.requests} single-transaction requests: {total / args.requests:.2f} pages written each")
    for name, count in written.most_common():
        print(f"  {count / args.requests:5.2f}  {name}")


if __name__ == "__main__":
    main()
