"""``tsla compare``: every method x seed with everything else identical, then the report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from .checkpoint import CHECKPOINT
from .config import TrainConfig, build_config
from .errors import RunDirError
from .trainer import RESUME_FREE_FIELDS, is_finished, load_run_config, resolve_device, train


def run_dir_name(method: str, seed: int) -> str:
    return f"{method}-seed{seed}"


def _check_same_config(run: Path, cfg: TrainConfig) -> None:
    """A finished run is reused only if it was trained with this comparison's settings."""
    saved = load_run_config(run).to_dict()
    differ = [k for k, v in cfg.to_dict().items() if k not in RESUME_FREE_FIELDS and saved.get(k) != v]
    if differ:
        k = differ[0]
        raise RunDirError(
            f"{run} is a finished run with {k}={saved[k]!r}, not {getattr(cfg, k)!r} as asked now: "
            f"use another --out for different settings"
        )


def plan(layers: list, methods: Sequence[str], seeds: Sequence[int]) -> list[TrainConfig]:
    """The config of every run, method-major; each is validated before anything trains."""
    return [build_config(*layers, ("--methods/--seeds", {"method": m, "seed": s})) for m in methods for s in seeds]


def run_compare(
    layers: list,
    methods: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    progress_bar: bool = True,
    dry_run: bool = False,
    log: TextIO | None = None,
) -> dict[str, Any] | None:
    """Train (or skip, or resume) every run of the grid in ``out`` and write the comparison report there."""
    from .data import build_data
    from .report import format_markdown, write_report

    log = log or sys.stdout
    configs = plan(layers, methods, seeds)
    if dry_run:
        for cfg in configs:
            print(f"{out / run_dir_name(cfg.method, cfg.seed)}: {cfg.method}, theta {cfg.theta}, seed {cfg.seed}", file=log)
        return None
    data = None
    for i, cfg in enumerate(configs, 1):
        run = out / run_dir_name(cfg.method, cfg.seed)
        if is_finished(run):
            _check_same_config(run, cfg)
            print(f"[{i}/{len(configs)}] {run}: finished, skipped", file=log)
            continue
        print(f"[{i}/{len(configs)}] {run}", file=log, flush=True)
        if data is None:  # every run shares the data settings: load it once
            data = build_data(cfg, resolve_device(cfg.device))
        train(cfg, run, resume=(run / CHECKPOINT).is_file(), data=data, log=log, progress_bar=progress_bar)
    summary = write_report([out])
    print(format_markdown(summary), file=log)
    print(f"wrote {out / 'summary.md'}, {out / 'summary.json'} and {out / 'curves.png'}", file=log)
    return summary
