#!/usr/bin/env bash
# Copy the small files of every finished study run (config.yaml, metrics.jsonl, summary.json, train.log; never
# checkpoints) into the evidence folder, with the machine's absolute study folder replaced by a relative path, and
# commit them, so that an interrupted study continues later without re-running finished runs.
#   STUDY_OUT   the study's run folder (default: runs/study); runs are found at any depth below it
#   STUDY_DEST  where their small files go (default: docs/evidence/study/runs), the same relative layout
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
src=$(cd "${STUDY_OUT:-runs/study}" && pwd)
dest=${STUDY_DEST:-docs/evidence/study/runs}
count=0
while IFS= read -r summary; do
    grep -q '"status": "finished"' "$summary" || continue
    run=$(dirname "$summary"); rel=${run#"$src"/}
    mkdir -p "$dest/$rel"
    for name in config.yaml metrics.jsonl summary.json train.log; do
        [ -f "$run/$name" ] && sed "s#$src/##g" "$run/$name" > "$dest/$rel/$name"
    done
    count=$((count + 1))
done < <(find "$src" -name summary.json -not -path "*/checkpoints/*" | sort)
git add "$dest"
if ! git diff --cached --quiet -- "$dest"; then
    git commit -q -m "Study: $count finished runs' small files (config, metrics, summary, log) in $dest" -- "$dest"
    echo "study_collect: committed $count runs"
fi
