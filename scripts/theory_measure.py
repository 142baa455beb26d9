"""Measure the theory's quantities (tsla.experiments.diagnose, i.e. what --diagnose-every logs) on saved checkpoints of
finished runs, without training anything, and append one JSON line per (run, epoch) to OUT.

    python scripts/theory_measure.py OUT EXAMPLES BATCHES RUN[:EPOCH[,EPOCH...]] ...

EPOCH counts from 0 and needs RUN/checkpoints/epoch-EPOCH.pt (kept with --keep-epochs EPOCH+1); without one, the
run's final checkpoint. Runs of one data configuration share one loaded data set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from tsla.data import build_data
from tsla.experiments.diagnose import diagnose_run
from tsla.training.trainer import load_run_config


def main(argv: list[str]) -> None:
    out, examples, batches, specs = Path(argv[0]), int(argv[1]), int(argv[2]), argv[3:]
    loaded: dict[str, object] = {}
    for spec in specs:
        run, _, epochs = spec.partition(":")
        cfg = load_run_config(Path(run))
        cfg.device = "cpu"
        key = json.dumps({k: v for k, v in cfg.to_dict().items()
                          if k in ("dataset", "train_subset", "val_size", "subset_seed", "label_noise",
                                   "label_noise_seed", "augment", "batch_size", "test_subset")}, sort_keys=True)
        if key not in loaded:
            loaded[key] = build_data(cfg, torch.device("cpu"))
        for epoch in [int(e) for e in epochs.split(",")] if epochs else [None]:
            result = diagnose_run(Path(run), epoch, examples, batches, data=loaded[key])
            with out.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(run, result["epoch"], f"{result['seconds']:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
