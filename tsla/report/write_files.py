"""Writing a report's files together: each under a temporary name, renamed into place only once all are written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


def write_together(out: Path, writers: dict[str, Callable[[Path], Any]]) -> None:
    """Write every file of ``writers`` ({name: write(path)}) under a temporary name first and rename them into place
    only once all are written, so a full disk leaves the previous report (or none), never half of a new one (nor a
    file cut short). A writer that writes nothing (a plot with nothing to draw) leaves its old copy, if any. Raises
    the ``OSError`` of the failed write, with every temporary file removed."""
    temporary = {name: out / f".tmp-{name}" for name in writers}
    try:
        for name, write in writers.items():
            write(temporary[name])
        for name, path in temporary.items():
            if path.exists():
                os.replace(path, out / name)
    finally:
        for path in temporary.values():
            path.unlink(missing_ok=True)
