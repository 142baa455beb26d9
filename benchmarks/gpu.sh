#!/usr/bin/env bash
# The GPU recipe: one call on a lent GPU machine (no network), under 5 minutes. Runs from the repository root with the
# machine's own python3 (which must hold torch, torchvision, numpy, matplotlib, PyYAML, tqdm and scipy: the lent
# H100/H200 images do); nothing is installed. Results go to ${OUT:-benchmarks/results}/gpu-*.json.
#
#   bash benchmarks/gpu.sh            # on a GPU: 50,000 synthetic CIFAR-100 images, bf16, channels_last, compiled
#   bash benchmarks/gpu.sh --cpu      # the same script, smaller, on a CPU (how the tests run it)
#
# For the real Fashion-MNIST run, point TSLA_DATA at a folder with its four IDX files (carry them: 31 MB);
# without it the script says so and skips that part.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
out=${OUT:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "${1:-}" = "--cpu" ]; then
    "$py" -m benchmarks.throughput --device cpu --batch-sizes 64 --images 128 --channels-last --out "$out/gpu-throughput-cpu.json"
    fast=(--device cpu --channels-last)
    subset=(--train-subset 512 --test-subset 500 --epochs 1 --milestones '' --method lsr)
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$py" -m benchmarks.throughput --device cuda --batch-sizes 128,512 --images 50000 --amp bf16 --channels-last \
        --compile --out "$out/gpu-throughput.json"
    fast=(--device cuda --amp bf16 --channels-last --compile)
    subset=(--epochs 12)
fi
if [ -n "${TSLA_DATA:-}" ] || [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    run=$(mktemp -d)/fashion
    start=$(date +%s)
    "$py" -m tsla train --preset fashion-mnist "${subset[@]}" "${fast[@]}" --out "$run" --no-progress | tail -n 3
    echo "gpu.sh: the Fashion-MNIST run took $(( $(date +%s) - start )) s"
    cp "$run/summary.json" "$out/gpu-fashion-summary.json"
else
    echo "gpu.sh: no Fashion-MNIST here (set TSLA_DATA to carried IDX files); skipped the real run"
fi
