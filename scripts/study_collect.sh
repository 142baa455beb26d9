#!/usr/bin/env bash
# Copy the small files of every finished study run (config.yaml, metrics.jsonl, summary.json, train.log; never
# checkpoints) into docs/evidence/study/runs/, with the machine's absolute study folder replaced by a relative path,
# and commit them, so that an interrupted study continues later without re-running finished runs.
#   STUDY_OUT  the study's run folder (default: runs/study)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
src=$(cd "${STUDY_OUT:-runs/study}" && pwd)
dest=docs/evidence/study/runs
for summary in "$src"/*/*/summary.json; do
    [ -f "$summary" ] || continue
    run=$(dirname "$summary"); rel=${run#"$src"/}
    mkdir -p "$dest/$rel"
    for name in config.yaml metrics.jsonl summary.json train.log; do
        [ -f "$run/$name" ] && sed "s#$src/##g" "$run/$name" > "$dest/$rel/$name"
    done
done
git add "$dest"
if ! git diff --cached --quiet -- "$dest"; then
    git commit -q -m "Study: $(ls -d "$dest"/*/* | wc -l) finished runs' small files (config, metrics, summary, log)" -- "$dest"
    echo "study_collect: committed $(ls -d "$dest"/*/* | wc -l) runs"
fi
