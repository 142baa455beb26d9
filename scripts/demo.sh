#!/usr/bin/env bash
# The README's first command: set up, then compare baseline, LSR and TSLA on the embedded Fashion-MNIST default.
# Prints the results table and writes runs/fashion-mnist-demo/{summary.md,summary.json,curves.png}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
# --seeds 0 and --out runs/fashion-mnist-demo unless the arguments give their own (tsla refuses a flag given twice)
seeds=(--seeds 0) out=(--out runs/fashion-mnist-demo)
for arg in "$@"; do
    case $arg in
        --seeds|--seeds=*) seeds=() ;;
        --out|--out=*) out=() ;;
    esac
done
.venv/bin/tsla compare --preset fashion-mnist ${seeds[@]+"${seeds[@]}"} ${out[@]+"${out[@]}"} "$@"
echo "demo: the comparison took $(( $(date +%s) - start )) s"
