"""scripts/study3_analyse.py on synthetic run folders whose answers are known by hand (no study-3 data is read).

Three regimes are written as scripts/study3.sh lays them out, 30 epochs per run:
- sym40, complete (8 draws x 2 seeds): TSLA(15) is 0.5 points better on clean validation and exactly +1 point on test
  from epoch 15, so Q1 chooses it in every pair; on the noisy labels it is worse, so Q1 keeps LSR (0 by
  construction). LSR's negative end at its last epoch is LSR's best-val test top-1 ± 0.1 (Q2 "matches").
- clean, complete: every cell is the same trajectory (everything 0 by construction; Q2 is last − best-val).
- pair40, 2 draws only: interim, descriptive.
"""

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "study3_analyse.py"
DRAWS, SEEDS, EPOCHS = range(4, 12), (0, 1), 30


def _load(name):
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trunk(e):
    """LSR's clean validation top-1: rises to 0.70 at epoch 20, then falls 0.005 per epoch."""
    return 0.50 + 0.01 * e if e <= 20 else 0.70 - 0.005 * (e - 20)


def _curves(regime, cell, draw, seed, e):
    """(val, val_noisy, test) of one epoch. ``u`` shifts every cell of a pair alike, so differences are exact."""
    u = 0.001 * ((draw * 3 + seed * 5) % 7 - 3)
    val = _trunk(e)
    test = val - 0.02 + u
    noisy = 0.6 * val
    if regime == "clean":
        return val, None, test
    switch = {"tsla@15": 15, "tsla@25": 25, "lsr-neg@25": 25}.get(cell)
    if cell == "baseline":
        return val - 0.10, noisy - 0.10, test - 0.05
    if cell == "tsla@15" and e >= 15:
        return val + 0.005, noisy - 0.05, test + 0.01
    if cell == "tsla@25" and e >= switch:
        return val - 0.01, noisy - 0.05, test - 0.01
    if cell == "lsr-neg@25" and e >= switch:
        # at epoch 29: LSR's best-val test top-1 (epoch 20) plus or minus 0.1 points, alternating by seed
        best = _trunk(20) - 0.02 + u
        return val - 0.01, noisy - 0.05, (best + (0.001 if seed == 0 else -0.001)) if e == EPOCHS - 1 else test
    return val, noisy, test


def write_run(root, regime, draw, cell, seed, theta=0.4, finished=True, curves=_curves):
    name = f"{cell}-seed{seed}" if cell == "baseline" else f"{cell}-theta{theta:g}-seed{seed}"
    run = root / regime / f"d{draw}" / name
    run.mkdir(parents=True)
    lines = []
    for e in range(EPOCHS):
        val, noisy, test = curves(regime, cell, draw, seed, e)
        record = {"epoch": e, "theta": theta, "val_top1": val, "val_nll": 1.0, "test_top1": test,
                  "test_nll": 1.0 - test, "test_ece": 0.1, "test_ts_ece": 0.02, "ts_temperature": 1.5}
        if noisy is not None:
            record["val_noisy_top1"] = noisy
        lines.append(json.dumps(record))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "summary.json").write_text(json.dumps({"status": "finished" if finished else "running",
                                                  "git_commit": "84831bd"}))
    return run


CELLS = ("baseline", "lsr", "tsla@15", "tsla@25", "lsr-neg@25")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("study3")
    runs = root / "runs"
    for regime, draws in (("sym40", DRAWS), ("clean", DRAWS), ("pair40", (4, 5))):
        for draw in draws:
            for seed in SEEDS:
                for cell in CELLS:
                    write_run(runs, regime, draw, cell, seed)
    write_run(runs, "sym40", 12, "lsr", 0, finished=False)  # still training: not a run of the study yet
    out = root / "out"
    result = _run(runs, "--out", out)
    assert result.returncode == 0, result.stderr
    return runs, out


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _contrast(out, family, question, regime, val_noise, stop_rule="best-val"):
    rows = [r for r in _csv(out / "contrasts.csv") if (r["family"], r["question"], r["regime"], r["val_noise"],
                                                       r["stop_rule"]) == (family, question, regime, val_noise,
                                                                           stop_rule)]
    assert len(rows) == 1
    return rows[0]


def test_smoke(analysed):
    runs, out = analysed
    print(sorted(p.name for p in out.iterdir()))
