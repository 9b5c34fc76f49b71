"""POST /detect-fraud with every step but storing, for measuring what storing costs by difference:
a benchmark calls ``patch()`` in its own process, or serves ``bench.without_storing:application()``
with gunicorn (an app factory, run in each worker as it starts)."""

from __future__ import annotations


def store_nothing(*, values, **_) -> list[int]:
    """Stands in for detection.storage.store_scored: no row is built or written, the ids are made up."""
    return list(range(1, len(values) + 1))


def patch() -> None:
    """Make this process's scoring path store nothing; call it after Django is set up."""
    from detection import services

    services.store_scored = store_nothing


def application():
    """The app, storing nothing: ``gunicorn 'bench.without_storing:application()'``."""
    from fraudsite.wsgi import application

    patch()
    return application
