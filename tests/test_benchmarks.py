"""The GPU recipe runs on a CPU too (smaller), end to end, as one command."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_recipe_runs_on_cpu(fashion_root, tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "TSLA_DATA": str(fashion_root)}
    done = subprocess.run(["bash", "benchmarks/gpu.sh", "--cpu"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "images/s on cpu" in done.stdout and "projected 200-epoch cifar100-resnet18 run" in done.stdout
    rows = json.loads((tmp_path / "gpu-throughput-cpu.json").read_text())
    assert rows[0]["batch_size"] == 64 and rows[0]["train_images_per_second"] > 0
    # the projection is 200 epochs of 50,000 images at the measured rate plus the evaluations
    per_epoch = 50_000 / rows[0]["train_images_per_second"] + rows[0]["eval_seconds_per_10k"]
    assert abs(rows[0]["projected_200_epochs_minutes"] - 200 * per_epoch / 60) < 1e-6
    summary = json.loads((tmp_path / "gpu-fashion-summary.json").read_text())
    assert summary["status"] == "finished" and summary["final"]["train_images"] == 512


def test_benchmark_command_writes_json_and_table(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--no-compile", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    cases = {(r["benchmark"], r["case"]) for r in results["rows"]}
    assert ("engine training throughput vs a bare SGD loop", "ResNet-8, 28x28, batch 128") in cases
    # 5 shapes x (5 loss paths + the control + the moonshot), 4 paths for the ignore_index case, 3 for class weights
    assert sum(1 for b, _ in cases if b.startswith("loss")) == 42
    assert all(r["ratio"] > 0 for r in results["rows"]) and results["meta"]["quick"] is True
    table = (tmp_path / "results.md").read_text()
    assert table.count("\n| ") == len(results["rows"]) + 1  # header + one row per measurement
