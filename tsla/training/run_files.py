"""A run folder's files while it trains: the config a resume must match, the kept checkpoints a branch starts from
(written atomically, rewritten when a kill cut them), and writes that fail with one clear error on a full or
read-only disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from ..config import TrainConfig, build_config, config_text, field_default, read_yaml
from ..errors import RunDirError, TrainingError
from .branch import kept_checkpoint
from .checkpoint import CHECKPOINT, CONFIG, METRICS, SUMMARY, atomic_copy, load_checkpoint, save_checkpoint

# fields that may differ between a checkpoint and a --resume: they change where and how fast, not what is computed
# ("threads" must not change either, but is checked on its own, by tsla.training.threads.check_same_threads)
RESUME_FREE_FIELDS = ("device", "eval_batch_size", "data_root", "download", "keep_checkpoints", "keep_epochs",
                      "threads")


def config_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """The fields (outside ``RESUME_FREE_FIELDS``) where ``cfg`` differs from a saved config dict. Between two
    baseline runs ``theta`` is not compared: the baseline trains on one-hot labels whatever it says (a grid gives its
    baseline the first of its thetas, so listing the same thetas in another order must not refuse it)."""
    free = RESUME_FREE_FIELDS + (("theta",) if cfg.method == "baseline" == saved.get("method") else ())
    return [k for k, v in cfg.to_dict().items()
            if k not in free and saved.get(k, field_default(k)) != v]  # a field added later: its default


def _check_resume_config(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    current = cfg.to_dict()
    differ = config_differences(saved, cfg)
    if differ:
        k = differ[0]
        raise RunDirError(
            f"--resume: {path} was made with {k}={saved.get(k)!r}, not {current[k]!r} "
            f"({len(differ)} field(s) differ: {', '.join(differ)}); resume with the run's own config.yaml or use a new --out"
        )


def _killed_before_first_checkpoint(out: Path, cfg: TrainConfig, branching: bool = False) -> bool:
    """A run that wrote its config.yaml (this very config) but was stopped before its first checkpoint. For a branch
    a metrics.jsonl is no sign of progress: it holds only the source's epochs (a branch used to write it before its
    first checkpoint), which the branch derives again from the source."""
    return (not (out / CHECKPOINT).exists() and (branching or not (out / METRICS).exists())
            and not (out / SUMMARY).exists() and (out / CONFIG).is_file()
            and (out / CONFIG).read_text() == config_text(cfg))


def _keep(out: Path, finished_epochs: int) -> None:
    """Keep RUN/checkpoint.pt (the state after ``finished_epochs`` epochs) as a kept checkpoint, atomically."""
    kept = kept_checkpoint(out, finished_epochs)
    _write(out, str(kept), lambda: (kept.parent.mkdir(exist_ok=True), atomic_copy(out / CHECKPOINT, kept)))


def _repair_kept(out: Path, cfg: TrainConfig, state: dict[str, Any], log: TextIO) -> None:
    """On a resume from the end of an epoch the run should have kept: write that kept checkpoint again when it is
    missing or unreadable (a kill between the checkpoint and its copy, or during an older, non-atomic copy)."""
    finished = int(state["next_epoch"])
    if state.get("mid_epoch") or not _keeps(cfg, finished):
        return
    kept = kept_checkpoint(out, finished)
    try:
        load_checkpoint(kept)
        return
    except RunDirError:
        pass
    print(f"tsla: writing the kept checkpoint {kept} again (it was {'damaged' if kept.exists() else 'missing'})",
          file=log)
    _keep(out, finished)


def _keeps(cfg: TrainConfig, finished_epochs: int) -> bool:
    return bool(cfg.keep_checkpoints and finished_epochs % cfg.keep_checkpoints == 0) or finished_epochs in cfg.keep_epochs


def _write(out: Path, what: str, write) -> None:
    """Run ``write()``; a full or read-only disk becomes one clear error instead of a traceback."""
    try:
        write()
    except OSError as exc:
        raise TrainingError(f"cannot write {what} in {out} ({exc.strerror or exc}): free some disk space or fix the "
                            f"permissions, then resume; the last checkpoint is kept") from None


def _save(out: Path, state: dict[str, Any]) -> None:
    try:
        save_checkpoint(out / CHECKPOINT, state)
    except OSError as exc:
        raise TrainingError(
            f"cannot write the checkpoint in {out} ({exc.strerror or exc}): free some disk space and resume; "
            f"the previous checkpoint is kept"
        ) from None


def load_run_config(out: Path) -> TrainConfig:
    """The resolved config a run directory was made with."""
    path = out / CONFIG
    if not path.is_file():
        raise RunDirError(f"{out} holds no run ({CONFIG} is missing): check the path")
    return build_config((str(path), read_yaml(path)))
