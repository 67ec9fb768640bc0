"""Atomic file writes: a reader (or a disk that fills up half-way) never leaves half a file.

Each file is written to a temporary name in its own folder, then renamed over the target; the
rename is atomic on the same file system, so the old file stays whole until the new one is.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; on failure the temp file is removed
    and the old ``path``, if any, is left as it was."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(raw)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def move_atomic(source: Path, target: Path) -> Path:
    """Rename a finished file (written in the target's folder) over ``target``."""
    os.replace(source, target)
    return Path(target)
