"""tsla's own trainer as a ``train_fn`` for :func:`tsla.select`: each trial trains the trainer's config (the layers
given, plus the candidate's method, theta, final theta and the trial's seed) in ``out/<trial.name>/``, the
trainer's files (config.yaml, metrics.jsonl, checkpoint.pt, best.pt, summary.json) beside the trial's, with
exactly the numbers ``tsla train`` gives for that config.

The checkpoint each epoch reports is a pointer, ``{"run": <trial name>, "epoch": e}``: the state itself is the
trainer's own checkpoint, and a branch starts from the trunk's kept checkpoint (``--keep-epochs``) as
``tsla train --branch-from`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from ...config import TrainConfig, build_config
from ...training.checkpoint import CHECKPOINT, load_checkpoint


def _method(candidate: dict[str, Any]) -> str:
    if candidate["method"] in ("baseline", "lsr"):
        return candidate["method"]
    return f"tsla@{candidate['switch_epoch']}"


class TrainerLoop:
    """``train_fn`` that trains tsla's models with ``tsla.train``. ``layers``: the config layers (defaults < preset <
    YAML < flags) every candidate shares; the data is loaded once per process and reused by every trial."""

    def __init__(self, layers: list, out: str | Path, log: TextIO | None = None, progress_bar: bool = False) -> None:
        self.layers, self.out, self.log, self.progress_bar = list(layers), Path(out), log, progress_bar
        self._data = None

    def __getstate__(self) -> dict[str, Any]:  # sent to other processes without the loaded data
        return {**self.__dict__, "_data": None, "log": None}

    def config(self, trial) -> TrainConfig:
        """The trainer's config of ``trial``: the shared layers, then the candidate's schedule and the seed."""
        c = trial.candidate
        values: dict[str, Any] = {"method": _method(c), "seed": trial.seed, "epochs": trial.epochs,
                                  "theta_after": c["theta_after"], "keep_epochs": list(trial.branch_points)}
        if c["method"] != "baseline":
            values["theta"] = c["theta"]
        if c["theta_after"] < 0:
            values["allow_negative"] = True
        return build_config(*self.layers, ("tsla.select", values))

    def __call__(self, trial) -> None:
        from ...data import build_data
        from ...training.runtime import resolve_device
        from ...training.trainer import train

        cfg = self.config(trial)
        folder = self.out / trial.name
        log = self.log or sys.stdout
        own = folder / CHECKPOINT
        resume, branch = own.is_file(), None
        if resume:  # the trainer may have saved an epoch the trial did not see reported (killed in between)
            ahead = load_checkpoint(own)["history"][trial.start_epoch:]
            for record in ahead:
                self._report(trial, record)
        elif trial.checkpoint is not None:  # a branch: from the trunk's checkpoint kept after S epochs
            branch = (self.out / trial.checkpoint["run"], trial.start_epoch)
        if trial.next_epoch >= trial.epochs and resume:
            return
        if self._data is None:
            self._data = build_data(cfg, resolve_device(cfg.device))
        train(cfg, folder, resume=resume, branch=branch, data=self._data, log=log, progress_bar=self.progress_bar,
              on_epoch=lambda record: self._report(trial, record))

    @staticmethod
    def _report(trial, record: dict[str, Any]) -> None:
        metrics = {k: v for k, v in record.items() if k.startswith("val_") and isinstance(v, (int, float))}
        trial.report(record["epoch"], checkpoint={"run": trial.name, "epoch": record["epoch"]}, **metrics)
