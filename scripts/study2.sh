#!/usr/bin/env bash
# Study 2 (docs/study2.md): 3 noise regimes x 3 data draws x 4 seeds, every cell of the plan, two (regime, draw,
# seed) families at a time, one thread per run. Resumable: re-running it skips finished runs and resumes interrupted
# ones. Each family trains its trunks (lsr, baseline) and branches every tail from their kept checkpoints.
#   STUDY2_OUT      where the runs go (default: runs/study2): OUT/<regime>/d<D>/<label>-seed<S>/
#   STUDY2_PYTHON   the interpreter with tsla's dependencies (default: .venv/bin/python)
#   STUDY2_REGIMES  which regimes, in order (default: "sym40 pair40 clean")
#   STUDY2_DRAWS    data draws (default: "1 2 3");  STUDY2_SEEDS  initialisation seeds (default: "0 1 2 3")
#   STUDY2_JOBS     families at a time (default: 2)
#   STUDY2_EVIDENCE committed small files of finished runs (default: docs/evidence/study2/runs): a family whose
#                   runs are all there is skipped, so another session or machine continues where the commits end
# Run it from the source tree whose tsla should train (python -m tsla imports the package from the current folder).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export STUDY2_OUT=${STUDY2_OUT:-$root/runs/study2}
export STUDY2_PYTHON=${STUDY2_PYTHON:-$root/.venv/bin/python}
export STUDY2_EVIDENCE=${STUDY2_EVIDENCE:-$root/docs/evidence/study2/runs}  # committed runs: their families are skipped
regimes=${STUDY2_REGIMES:-"sym40 pair40 clean"}
draws=${STUDY2_DRAWS:-"1 2 3"}
seeds=${STUDY2_SEEDS:-"0 1 2 3"}
jobs=${STUDY2_JOBS:-2}
# bad settings: one line and exit 2 before anything trains (xargs -P 0 would start every family at once)
refuse() { echo "study2: $1" >&2; exit 2; }
for regime in $regimes; do
    case $regime in
        sym40|pair40|clean) ;;
        *) refuse "STUDY2_REGIMES: unknown regime '$regime' (choose from sym40 pair40 clean)" ;;
    esac
done
for value in $draws $seeds; do
    [[ $value =~ ^[0-9]+$ ]] || refuse "STUDY2_DRAWS / STUDY2_SEEDS: '$value' is not a whole number >= 0"
done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || refuse "STUDY2_JOBS: '$jobs' is not a whole number >= 1 (families trained at once)"
command -v "$STUDY2_PYTHON" > /dev/null \
    || refuse "STUDY2_PYTHON: $STUDY2_PYTHON is not an executable (run scripts/setup.sh, or set it)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per run: the thread count changes the numbers (results.md)

family() {  # one (regime, draw, seed): its trunks and every branch, in the plan's order
    local regime=$1 draw=$2 seed=$3
    local dir="$STUDY2_OUT/$regime/d$draw"
    local noise=()
    case $regime in
        sym40) noise=(--label-noise 0.4) ;;
        pair40) noise=(--label-noise 0.4 --label-noise-type pair) ;;
        clean) noise=() ;;
        *) echo "study2: unknown regime $regime" >&2; return 2 ;;
    esac
    local common=(--dataset fashion-mnist --model resnet8 --train-subset 2000 --val-size 1000
                  --milestones 15,25 --batch-size 64 --lr 0.05 --weight-decay 5e-4 --no-augment --channels-last
                  --test-every 30 --threads 1 --no-progress --subset-seed "$draw" --label-noise-seed "$draw"
                  --seed "$seed" "${noise[@]}")
    run() {  # run LABEL ARGS...: train (or resume, or skip when finished) OUT/<label>-seed<S>
        local out="$dir/$1-seed$seed"; shift
        if [ -f "$out/summary.json" ] && grep -q '"status": "finished"' "$out/summary.json"; then return 0; fi
        local length=(--epochs 30)  # every run's length but the budget control's, which gives its own
        case " $* " in *" --epochs "*) length=() ;; esac  # (tsla refuses a flag given twice)
        local args=("$@")
        if [ -f "$out/checkpoint.pt" ]; then
            # an interrupted run resumes from its own checkpoint: a branch drops --branch-from/--at-epoch (tsla
            # refuses both with --resume); the checkpoint records where it branched from. Stopped before its first
            # checkpoint (config.yaml only), the same command starts it again: a branch from its source's kept
            # checkpoint, not (as --resume would) from epoch 0 at full cost and with no branched_from
            args=()
            while [ $# -gt 0 ]; do
                case $1 in --branch-from|--at-epoch) shift 2 ;; *) args+=("$1"); shift ;; esac
            done
            args+=(--resume)
        fi
        echo "study2: $(date -u +%H:%M:%S) $regime d$draw seed $seed: ${out#"$STUDY2_OUT"/}"
        "$STUDY2_PYTHON" -m tsla train "${common[@]}" "${length[@]}" "${args[@]}" --out "$out" > /dev/null
    }
    local lsr="$dir/lsr-seed$seed" base="$dir/baseline-seed$seed"
    # a family whose every run is already committed (another session, another machine) is done: skip it whole;
    # a partly committed one trains again from its trunk here, bit-identical on one machine kind (results.md)
    local label done=1
    for label in lsr tsla@25 tsla@28 budget lsr-neg@25 tsla@15 baseline wei@15; do
        grep -qs '"status": "finished"' "$STUDY2_EVIDENCE/$regime/d$draw/$label-seed$seed/summary.json" || done=0
    done
    [ "$done" = 1 ] && return 0
    run lsr --method lsr --theta 0.4 --keep-epochs 15,25,28,30
    run tsla@25 --method tsla@25 --theta 0.4 --branch-from "$lsr" --at-epoch 25
    run tsla@28 --method tsla@28 --theta 0.4 --branch-from "$lsr" --at-epoch 28
    run budget --method tsla@30 --theta 0.4 --epochs 35 --branch-from "$lsr" --at-epoch 30
    run lsr-neg@25 --method tsla@25 --theta 0.4 --theta-after -0.2 --allow-negative --branch-from "$lsr" --at-epoch 25
    run tsla@15 --method tsla@15 --theta 0.4 --branch-from "$lsr" --at-epoch 15
    run baseline --method baseline --theta 0.4 --keep-epochs 15
    run wei@15 --method reverse@15 --theta -0.2 --allow-negative --branch-from "$base" --at-epoch 15
}
export -f family

{   # the noisy regimes interleaved by (draw, seed), so that pairs finish in both together; then the others
    noisy=$(for r in $regimes; do if [[ $r == *40 ]]; then echo "$r"; fi; done)
    for draw in $draws; do
        for seed in $seeds; do
            for regime in $noisy; do echo "$regime $draw $seed"; done
        done
    done
    for regime in $regimes; do
        if [[ $regime == *40 ]]; then continue; fi
        for draw in $draws; do
            for seed in $seeds; do echo "$regime $draw $seed"; done
        done
    done
} | xargs -r -P "$jobs" -L 1 bash -c 'set -e; family $0 $1 $2'
echo "study2: done; analyse with: python scripts/study2_analyse.py $STUDY2_OUT"
