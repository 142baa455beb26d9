"""Reports over finished runs: collect run directories, summarise over seeds, write a table and learning curves.

A run directory RUN/ holds ``metrics.jsonl`` (one JSON object per epoch, epochs from 0), ``config.yaml`` and, once
the run has finished, ``summary.json``. A comparison directory holds runs one level down (``DIR/tsla@6-seed0/``).
:func:`write_report` writes ``summary.json``, ``summary.md``, ``curves.png`` and ``reliability.png`` into an output
directory.

Spreads are sample standard deviations over seeds (ddof=1); with a single seed the std is recorded as 0.0 beside
the seed count ``n``, and the table shows the value alone.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import RunDirError
from .collect import RunRecord, _is_run_dir, collect_runs, run_labels
from .plots import plot_curves, plot_diagnostics, plot_reliability
from .summary import format_markdown, summarize
from .write_files import write_together

__all__ = ["RunRecord", "collect_runs", "format_markdown", "plot_curves", "plot_diagnostics", "plot_reliability", "run_labels", "summarize", "write_report"]


def _jsonable(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, so the file is strict JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report(dirs: Sequence[Path], out: Path | None = None) -> dict[str, Any]:
    """Collect the finished runs in ``dirs`` and write ``summary.json``, ``summary.md`` and ``curves.png`` into ``out``.

    ``out`` defaults to the first directory (its ``report/`` subdirectory when that is itself a run). Returns the
    summary (``summarize``'s dict plus ``run_paths``, relative to ``out``, and ``notes``). Raises ``RunDirError`` when a directory does not
    exist or no finished run is found.
    """
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise RunDirError("no run directory given: run `tsla compare` first and pass its output directory")
    notes: list[str] = []
    runs = collect_runs(dirs, notes)
    if not runs:
        why = f" ({notes[0]})" if notes else ""
        raise RunDirError(f"no finished runs in {', '.join(map(str, dirs))}{why}: run `tsla compare` first")
    if out is None:  # never overwrite a run's own summary.json
        out = dirs[0] / "report" if _is_run_dir(dirs[0]) else dirs[0]
    out = Path(out)
    summary = summarize(runs)
    # relative to the report's folder: a committed summary names no folder of the machine that made it
    for row in summary["runs"]:
        row["path"] = os.path.relpath(row["path"], out)
    summary["run_paths"] = [os.path.relpath(r.path, out) for r in runs]
    summary["notes"] = notes
    if _is_run_dir(out):
        raise RunDirError(f"--out {out} is a run directory: its summary.json would be overwritten; choose another --out")
    writers = {
        "summary.json": lambda p: p.write_text(json.dumps(_jsonable(summary), indent=2, ensure_ascii=False) + "\n"),
        "summary.md": lambda p: p.write_text(format_markdown(summary)),
        "curves.png": lambda p: plot_curves(runs, p),
        "reliability.png": lambda p: plot_reliability(runs, p),
        "diagnostics.png": lambda p: plot_diagnostics(runs, p),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_together(out, writers)
    except OSError as exc:
        raise RunDirError(f"cannot write the report in {out} ({exc.strerror or exc}): free some disk space or choose "
                          f"a writable --out (an earlier report there is left as it was)") from None
    return summary
