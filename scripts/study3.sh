#!/usr/bin/env bash
# Study 3 (docs/study3.md): 4 noise regimes x 8 data draws x 2 seeds, theta 0.4 first (the primary grid), then
# theta 0.1 (secondary), two (regime, draw, seed) families at a time, one thread per run. Every run logs per epoch the
# full test set's top-1/NLL, validation metrics on the clean and the noisy validation labels, and test calibration
# after temperature scaling, so that every stopping and selection rule of the plan is replayed from the logs.
# Resumable: re-running it skips finished runs and resumes interrupted ones.
#   STUDY3_OUT      where the runs go (default: runs/study3): OUT/<regime>/d<D>/<label>-theta<T>-seed<S>/
#   STUDY3_PYTHON   the interpreter with tsla's dependencies (default: .venv/bin/python)
#   STUDY3_REGIMES  regimes, in order (default: "sym40 pair40 clean sym20")
#   STUDY3_THETAS   thetas, in order (default: "0.4 0.1"; every family of the first before the second)
#   STUDY3_DRAWS    data draws (default: "4 5 6 7 8 9 10 11");  STUDY3_SEEDS  seeds (default: "0 1")
#   STUDY3_JOBS     families at a time (default: 2)
#   STUDY3_EVIDENCE committed small files of finished runs (default: docs/evidence/study3/runs): a family whose runs
#                   are all there is skipped, so another session or machine continues where the commits end
# Run it from the source tree whose tsla should train (python -m tsla imports the package from the current folder).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export STUDY3_OUT=${STUDY3_OUT:-$root/runs/study3}
export STUDY3_PYTHON=${STUDY3_PYTHON:-$root/.venv/bin/python}
export STUDY3_EVIDENCE=${STUDY3_EVIDENCE:-$root/docs/evidence/study3/runs}
regimes=${STUDY3_REGIMES:-"sym40 pair40 clean sym20"}
thetas=${STUDY3_THETAS:-"0.4 0.1"}
draws=${STUDY3_DRAWS:-"4 5 6 7 8 9 10 11"}
seeds=${STUDY3_SEEDS:-"0 1"}
jobs=${STUDY3_JOBS:-2}
refuse() { echo "study3: $1" >&2; exit 2; }
set -f  # the lists are split on spaces, never expanded as file names (STUDY3_DRAWS='*')
check_list() {  # check_list NAME VALUES: refuse an empty list, or one naming a value twice
    [ -n "${2// /}" ] || refuse "STUDY3_$1: the list is empty (nothing would train): leave it unset for the plan's"
    # a value given twice would train one family twice (two at once: the second refused, the folder in use)
    [ -z "$(tr ' ' '\n' <<< "$2" | sed '/^$/d' | sort | uniq -d)" ] || refuse "STUDY3_$1: '$2' repeats a value"
}
check_list REGIMES "$regimes"; check_list THETAS "$thetas"; check_list DRAWS "$draws"; check_list SEEDS "$seeds"
for regime in $regimes; do
    case $regime in
        sym40|pair40|clean|sym20) ;;
        *) refuse "STUDY3_REGIMES: unknown regime '$regime' (choose from sym40 pair40 clean sym20)" ;;
    esac
done
for theta in $thetas; do
    case $theta in 0.4|0.1) ;; *) refuse "STUDY3_THETAS: '$theta' is not a theta of the plan (0.4 or 0.1)" ;; esac
done
for value in $draws $seeds; do
    [[ $value =~ ^(0|[1-9][0-9]{0,8})$ ]] \
        || refuse "STUDY3_DRAWS / STUDY3_SEEDS: '$value' is not a whole number >= 0 (no leading zeros, at most 9 digits)"
done
[[ $jobs =~ ^[1-9][0-9]{0,2}$ ]] || refuse "STUDY3_JOBS: '$jobs' is not a whole number from 1 to 999 (families trained at once)"
command -v "$STUDY3_PYTHON" > /dev/null \
    || refuse "STUDY3_PYTHON: $STUDY3_PYTHON is not an executable (run scripts/setup.sh, or set it)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread per run: the thread count changes the numbers (results.md)

family() {  # one (regime, draw, seed, theta): the LSR trunk and its branches; the baseline with the first theta
    local regime=$1 draw=$2 seed=$3 theta=$4 first=$5
    local dir="$STUDY3_OUT/$regime/d$draw"
    local noise=()
    case $regime in
        sym40) noise=(--label-noise 0.4) ;;
        sym20) noise=(--label-noise 0.2) ;;
        pair40) noise=(--label-noise 0.4 --label-noise-type pair) ;;
        clean) noise=() ;;
        *) echo "study3: unknown regime $regime" >&2; return 2 ;;
    esac
    local common=(--dataset fashion-mnist --model resnet8 --train-subset 2000 --val-size 1000 --epochs 30
                  --milestones 15,25 --batch-size 64 --lr 0.05 --weight-decay 5e-4 --no-augment --channels-last
                  --test-every 1 --threads 1 --no-progress --subset-seed "$draw" --label-noise-seed "$draw"
                  --seed "$seed" "${noise[@]}")
    run() {  # run LABEL ARGS...: train (or resume, or skip when finished) OUT/<label>-seed<S>
        local out="$dir/$1-seed$seed"; shift
        if [ -f "$out/summary.json" ] && grep -q '"status": "finished"' "$out/summary.json"; then return 0; fi
        local args=("$@")
        if [ -f "$out/checkpoint.pt" ]; then
            # an interrupted run resumes from its own checkpoint (a branch without --branch-from/--at-epoch: the
            # checkpoint records where it branched from); one stopped before its first checkpoint starts again
            args=()
            while [ $# -gt 0 ]; do
                case $1 in --branch-from|--at-epoch) shift 2 ;; *) args+=("$1"); shift ;; esac
            done
            args+=(--resume)
        fi
        echo "study3: $(date -u +%H:%M:%S) $regime d$draw seed $seed: ${out#"$STUDY3_OUT"/}"
        "$STUDY3_PYTHON" -m tsla train "${common[@]}" "${args[@]}" --out "$out" > /dev/null
    }
    local lsr="$dir/lsr-theta$theta-seed$seed"
    local labels="lsr-theta$theta tsla@15-theta$theta tsla@25-theta$theta lsr-neg@25-theta$theta"
    [ "$first" = 1 ] && labels="$labels baseline"
    local label done=1
    for label in $labels; do
        grep -qs '"status": "finished"' "$STUDY3_EVIDENCE/$regime/d$draw/$label-seed$seed/summary.json" || done=0
    done
    [ "$done" = 1 ] && return 0
    run "lsr-theta$theta" --method lsr --theta "$theta" --keep-epochs 15,25
    run "tsla@25-theta$theta" --method tsla@25 --theta "$theta" --branch-from "$lsr" --at-epoch 25
    run "lsr-neg@25-theta$theta" --method tsla@25 --theta "$theta" --theta-after -0.2 --allow-negative \
        --branch-from "$lsr" --at-epoch 25
    run "tsla@15-theta$theta" --method tsla@15 --theta "$theta" --branch-from "$lsr" --at-epoch 15
    if [ "$first" = 1 ]; then run baseline --method baseline; fi
}
export -f family

{   # theta-major (the primary theta's grid first), then regime, draw, seed
    first=1
    for theta in $thetas; do
        for regime in $regimes; do
            for draw in $draws; do
                for seed in $seeds; do echo "$regime $draw $seed $theta $first"; done
            done
        done
        first=0
    done
} | xargs -r -P "$jobs" -L 1 bash -c 'set -e; family $0 $1 $2 $3 $4'
echo "study3: done; analyse with: python scripts/study3_analyse.py $STUDY3_OUT"
