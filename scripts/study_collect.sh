#!/usr/bin/env bash
# Copy the small files of every finished study run (config.yaml, metrics.jsonl, summary.json, train.log; never
# checkpoints) into the evidence folder, with the machine's absolute study folder replaced by a relative path, and
# commit them, so that an interrupted study continues later without re-running finished runs. A run whose committed
# files differ from its folder's now is refused (exit 2, nothing copied): committed evidence is never replaced.
#   STUDY_OUT   the study's run folder (default: runs/study); runs are found at any depth below it
#   STUDY_DEST  where their small files go (default: docs/evidence/study/runs), the same relative layout
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
src=$(cd "${STUDY_OUT:-runs/study}" && pwd)
dest=${STUDY_DEST:-docs/evidence/study/runs}
committed=$(realpath -m --relative-to="$root" "$dest")  # the evidence as git names it
# Committed evidence is never replaced: a finished run whose small files now differ from the committed ones (trained
# again, or another run in its folder) stops the collection before anything is copied. Compared with HEAD, not the
# working tree, so a file cut by an interrupted copy is simply written again.
changed=0 first=
while IFS= read -r summary; do
    grep -q '"status": "finished"' "$summary" || continue
    run=$(dirname "$summary"); rel=${run#"$src"/}
    for name in config.yaml metrics.jsonl summary.json train.log; do
        [ -f "$run/$name" ] && git cat-file -e "HEAD:$committed/$rel/$name" 2>/dev/null || continue
        if ! sed "s#$src/##g" "$run/$name" | cmp -s - <(git show "HEAD:$committed/$rel/$name"); then
            changed=$((changed + 1)); first=${first:-$rel/$name}
        fi
    done
done < <(find "$src" -name summary.json -not -path "*/checkpoints/*" | sort)
if [ "$changed" -gt 0 ]; then
    echo "study_collect: $committed/$first is committed with other content than $src/$first" \
         "($changed file(s) in all): a finished run's evidence is never replaced; to replace it deliberately," \
         "git rm that run's folder and commit first; nothing was copied" >&2
    exit 2
fi
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
    # the runs this commit adds: those with a new or changed file (the others are committed already)
    new=$(git diff --cached --name-only -- "$dest" | xargs -r -n1 dirname | sort -u | wc -l)
    git commit -q -m "Study: $new finished runs' small files (config, metrics, summary, log) in $dest" -- "$dest"
    echo "study_collect: committed $new new runs ($count finished in all)"
fi
