"""Second measurement of the loss benchmark's seven ignore_index and class-weight cases (5 rounds each).

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/results/loss/rerun-new-cases.py
"""
import json
from pathlib import Path

import torch

from benchmarks import bench_loss

g = torch.Generator().manual_seed(1)
rows = bench_loss._ignore_index(g, 5, 10) + bench_loss._weight(g, 5, 50)
Path(__file__).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
for r in rows:
    print(r["case"], round(r["ratio"], 3))
