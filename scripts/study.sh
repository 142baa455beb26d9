#!/usr/bin/env bash
# The evidence study of docs/study.md: regimes R1 (few images) and R2 (few images + 40% label noise), two seeds at a
# time, alternating regimes so that each finished seed pair is complete in both; then R0 (the replication preset).
# Resumable: re-running it skips finished runs and resumes interrupted ones.
#   STUDY_OUT      where the runs go (default: runs/study)
#   STUDY_PYTHON   the interpreter with tsla's dependencies (default: .venv/bin/python)
#   STUDY_SEEDS    space-separated seed groups (default: "0,1 2,3 4,5 6,7")
#   STUDY_REGIMES  which regimes (default: "r1 r2 r0")
# Run it from the source tree whose tsla should train (python -m tsla imports the package from the current folder).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${STUDY_OUT:-$root/runs/study}
py=${STUDY_PYTHON:-$root/.venv/bin/python}
seed_groups=${STUDY_SEEDS:-"0,1 2,3 4,5 6,7"}
regimes=${STUDY_REGIMES:-"r1 r2 r0"}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per run, two runs at a time: the thread count is recorded

small=(--dataset fashion-mnist --model resnet8 --train-subset 2000 --val-size 1000 --epochs 30 --milestones 15,25
       --batch-size 64 --lr 0.05 --weight-decay 5e-4 --no-augment --channels-last --test-every 5
       --methods baseline,lsr,tsla@15,tsla@25 --thetas 0.1,0.2,0.4 --jobs 2 --no-progress)
has() { [[ " $regimes " == *" $1 "* ]]; }
for seeds in $seed_groups; do
    has r1 && "$py" -m tsla compare "${small[@]}" --seeds "$seeds" --out "$out/r1-few"
    has r2 && "$py" -m tsla compare "${small[@]}" --label-noise 0.4 --label-noise-seed 0 --seeds "$seeds" \
        --out "$out/r2-noise"
done
if has r0; then
    for seeds in $seed_groups; do
        "$py" -m tsla compare --preset fashion-mnist-replication --seeds "$seeds" --jobs 2 --no-progress \
            --out "$out/r0-replication"
    done
fi
echo "study: done; analyse with: tsla report $out/r1-few $out/r2-noise --paired --out docs/evidence/study"
