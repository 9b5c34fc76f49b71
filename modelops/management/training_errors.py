"""How the commands that train on a file report what stops them: one line, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.management.base import CommandError

from modelops.ml.schema import DataValidationError
from modelops.services import deployments, training_runs


@contextmanager
def training_errors(csv: str) -> Iterator[None]:
    """Check that ``csv`` names a file, then turn what stops training on it into a
    CommandError naming the file and the problem (with its line for a malformed file)."""
    path = Path(csv)
    if not path.exists():
        raise CommandError(f"{csv}: no such file")
    if not path.is_file():
        raise CommandError(f"{csv}: not a file")
    try:
        yield
    except DataValidationError as exc:
        raise CommandError(f"{csv}: {exc}") from None
    except PermissionError:
        raise CommandError(f"{csv}: permission denied") from None
    except (deployments.ActivationError, training_runs.TrainingInProgress) as exc:
        raise CommandError(str(exc)) from None
