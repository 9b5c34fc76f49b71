"""A generated secret is never seen half-written, however many processes start at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from common.secret_file import read_or_create


def test_a_process_starting_while_another_writes_the_secret_gets_a_whole_one(tmp_path):
    path = tmp_path / "secret_key"
    writing, release = threading.Event(), threading.Event()

    def slow_key() -> str:
        writing.set()
        release.wait(5)
        return "s" * 60

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(read_or_create, path, generate=slow_key)
        assert writing.wait(5)
        second = read_or_create(path, generate=lambda: "t" * 60)
        release.set()
        assert second == "t" * 60
        assert first.result(5) == second  # the key linked first wins, for both
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary file left


def test_an_existing_secret_is_read_and_kept(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("kept-secret\n")
    assert read_or_create(path, generate=lambda: "new") == "kept-secret"
    assert path.read_text() == "kept-secret\n"
