#!/usr/bin/env bash
# The README's first command: set up, then compare baseline, LSR and TSLA on the embedded Fashion-MNIST default.
# Prints the results table and writes runs/fashion-mnist-demo/{summary.md,summary.json,curves.png}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
.venv/bin/tsla compare --preset fashion-mnist --seeds 0 --out runs/fashion-mnist-demo "$@"
echo "demo: the comparison took $(( $(date +%s) - start )) s"
