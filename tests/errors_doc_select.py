"""Setups of docs/errors.md rows 120-139 (issue 30): a finished tsla select in RUN and the damage each row applies
to it, and runs.csv files whose contrasts cannot be computed. Called by tests/test_errors_doc.py for setups named
``select: ...`` and ``runs-csv-30: ...``."""

import csv
import json
import shutil
from pathlib import Path

from tsla.cli import main
from tsla.report.runs_csv import RUN_COLUMNS

# the select every ``select: ...`` setup trains in RUN (DATA: the 40-image fake Fashion-MNIST); a row's command
# repeats these flags, with --out RUN, so that nothing is refused for other settings
SELECT_FLAGS = ("--val-size 10 --epochs 2 --milestones 1 --thetas 0.4 --switch-at 1 --seeds 0 --batch-size 8 "
                "--threads 1 --device cpu --no-progress")


def select_setup(kind: str, tmp: Path, tiny: Path) -> None:
    """``select: done`` trains the select; ``select: swapped-best``, ``unchecked-best``, ``swapped-checkpoint`` and
    ``edited-metrics`` then damage its runs."""
    run = tmp / "run"
    assert main(["select", "--data-root", str(tiny), *SELECT_FLAGS.split(), "--out", str(run)]) == 0
    names = ["baseline-seed0", "lsr-seed0", "tsla@1-seed0"]
    damage = kind.removeprefix("select: ")
    if damage == "swapped-best":  # each run holds the next run's best.pt
        files = {name: (run / name / "best.pt").read_bytes() for name in names}
        for name, other in zip(names, names[1:] + names[:1]):
            (run / name / "best.pt").write_bytes(files[other])
    elif damage == "unchecked-best":  # best.pt saved again without its checksum
        import torch

        for name in names:
            state = torch.load(run / name / "best.pt", weights_only=True)
            state.pop("checksum")
            torch.save(state, run / name / "best.pt")
    elif damage == "swapped-checkpoint":  # LSR's checkpoint.pt copied over TSLA(1)'s
        shutil.copy(run / "lsr-seed0" / "checkpoint.pt", run / "tsla@1-seed0" / "checkpoint.pt")
    elif damage == "edited-metrics":  # the baseline's last validation top-1 raised by hand
        path = run / "baseline-seed0" / "metrics.jsonl"
        lines = path.read_text().splitlines()
        record = json.loads(lines[-1])
        record["val_top1"] = 1.0
        path.write_text("\n".join(lines[:-1] + [json.dumps(record)]) + "\n")
    elif damage != "done":
        raise AssertionError(f"unknown setup {kind!r} in docs/errors.md")


def runs_csv_setup(kind: str, tmp: Path) -> None:
    """RUN/runs.csv with cells a and b of regime r at seeds 0-3 (a 91, b 90): ``runs-csv-30: no-best-val`` leaves
    b's test top-1 at the best validation epoch empty; ``runs-csv-30: 1e308`` puts ±1e308 at seed 0."""
    bad = kind.removeprefix("runs-csv-30: ")
    if bad not in ("no-best-val", "1e308"):
        raise AssertionError(f"unknown setup {kind!r} in docs/errors.md")
    (tmp / "run").mkdir()
    with open(tmp / "run" / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RUN_COLUMNS)
        for label, top1 in (("a-theta0.1", 91.0), ("b-theta0.1", 90.0)):
            for seed in range(4):
                last = (1e308 if label[0] == "a" else -1e308) if bad == "1e308" and seed == 0 else top1
                best = "" if bad == "no-best-val" and label[0] == "b" else top1
                row = {"regime": "r", "label": label, "method": label[0], "theta": 0.1, "switch_epoch": "",
                       "seed": seed, "val_top1": "", "test_top1": last, "test_nll": 0.3, "test_ece": 1.0,
                       "train_top1": 99.0, "train_onehot_loss": 0.1, "epochs": 5, "commit": "abc",
                       "best_val_epoch": 3, "test_top1_at_best_val": best, "noise_memorised_final": "",
                       "label_noise_type": "none"}
                writer.writerow([row[c] for c in RUN_COLUMNS])
