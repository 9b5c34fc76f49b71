"""A secret generated once into a file, for a local run that has none in its environment."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path


def read_or_create(path: Path, *, generate=lambda: secrets.token_urlsafe(50)) -> str:
    """The secret in ``path``, written there first if there is none yet. Linked into place whole,
    so racing processes never read a partial file and all end up with the first one linked."""
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
