"""Study 3's numbers that README.md and docs/results3.md quote, recomputed from the committed per-epoch files
(docs/evidence/study3/runs/<regime>/d<D>/<run>/metrics.jsonl) with independent code: an argmax over the logged
validation accuracies, the questions' choices by hand, scipy's t quantile for the intervals. Neither runs.csv nor the
analysis scripts are read. Under a few seconds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "evidence" / "study3" / "runs"
DRAWS, SEEDS = range(4, 12), (0, 1)
NAMES = {"baseline": "baseline-seed{s}", "lsr": "lsr-theta0.4-seed{s}", "tsla@15": "tsla@15-theta0.4-seed{s}",
         "tsla@25": "tsla@25-theta0.4-seed{s}", "lsr-neg@25": "lsr-neg@25-theta0.4-seed{s}"}
VAL = {"clean": "val_top1", "noisy": "val_noisy_top1"}


def _doc(name):
    return re.sub(r"\s+", " ", (ROOT / name).read_text(encoding="utf-8"))


def _interval(d, digits=2):
    """The mean (to ``digits`` decimals: 3 where the mean sits on a rounding boundary, as clean's Q3 at exactly
    −0.005) and its 95 % t interval (2 decimals), as the docs write them."""
    d = np.asarray(d, dtype=float)
    half = scipy_stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return " ".join([f"{d.mean():+.{digits}f}", f"[{d.mean() - half:+.2f},", f"{d.mean() + half:+.2f}]"]).replace(
        "-", "−")


def _digits(quoted):
    return len(quoted.split()[0].split(".")[1])


def _records(regime, draw, cell, seed):
    path = RUNS / regime / f"d{draw}" / NAMES[cell].format(s=seed) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _kept(records, labels, rule="best-val"):
    """(validation top-1, test top-1) in % at the epoch the rule keeps: the first epoch of highest validation top-1,
    or the last epoch."""
    if rule == "last":
        r = records[-1]
    else:
        values = [r[VAL[labels]] for r in records]
        r = records[values.index(max(values))]
    return 100 * r[VAL[labels]], 100 * r["test_top1"]


_LOADED: dict = {}


def _runs(regime):
    """Every committed run's per-epoch records of a complete regime, keyed (draw, seed, cell); skips when absent."""
    if regime not in _LOADED:
        if not (RUNS / regime / "d11").is_dir():
            pytest.skip(f"study 3's {regime} runs are not committed")
        _LOADED[regime] = {(d, s, c): _records(regime, d, c, s) for d in DRAWS for s in SEEDS for c in NAMES}
    return _LOADED[regime]


def _row(regime, labels, quoted):
    """The line of results3.md's answers table for (regime, labels) that quotes this interval."""
    ci = quoted[quoted.index("["):]
    rows = [line for line in (ROOT / "docs" / "results3.md").read_text(encoding="utf-8").splitlines()
            if f"| {regime} | {labels} |" in line and ci in line]
    assert len(rows) == 1, (regime, labels, quoted)
    return rows[0]


def _signs(diffs):
    d = np.asarray(diffs)
    return f"| {(d > 0).sum()} / {(d < 0).sum()} / {(d == 0).sum()} |"


# (regime, validation labels, the interval quoted in README.md and docs/results3.md)
Q1 = [("clean", "clean", "−0.13 [−0.34, +0.07]"),
      ("sym20", "clean", "+0.03 [−0.23, +0.29]"), ("sym20", "noisy", "+0.05 [−0.09, +0.19]"),
      ("sym40", "clean", "+0.93 [+0.52, +1.33]"), ("sym40", "noisy", "+0.88 [+0.54, +1.22]"),
      ("pair40", "clean", "+0.22 [−0.18, +0.62]"), ("pair40", "noisy", "−0.23 [−1.03, +0.57]")]
Q2 = [("clean", "clean", "−0.71 [−0.82, −0.59]"),
      ("sym20", "clean", "+0.17 [−0.04, +0.37]"), ("sym20", "noisy", "+0.18 [−0.05, +0.41]"),
      ("sym40", "clean", "+0.61 [+0.22, +1.00]"), ("sym40", "noisy", "+0.78 [+0.41, +1.14]"),
      ("pair40", "clean", "−1.09 [−1.62, −0.57]"), ("pair40", "noisy", "−0.47 [−1.06, +0.12]")]
Q3 = [("clean", "clean", "−0.005 [−0.11, +0.10]", "baseline"),
      ("sym20", "clean", "−0.01 [−0.09, +0.06]", "tsla@25"),
      ("sym20", "noisy", "−0.03 [−0.11, +0.06]", "lsr-neg@25"),
      ("sym40", "clean", "−0.04 [−0.21, +0.14]", "tsla@15"),
      ("sym40", "noisy", "+0.10 [−0.46, +0.67]", "tsla@15"),
      ("pair40", "clean", "+0.57 [−0.12, +1.26]", "tsla@15"),
      ("pair40", "noisy", "+0.14 [−0.81, +1.08]", "tsla@25")]


@pytest.mark.parametrize("regime, labels, quoted", Q1)
def test_q1_the_switch_chosen_on_validation(regime, labels, quoted):
    runs = _runs(regime)
    diffs = []
    for d in DRAWS:
        for s in SEEDS:
            kept = {c: _kept(runs[(d, s, c)], labels) for c in ("lsr", "tsla@25", "tsla@15")}
            best = max(kept.values(), key=lambda v: v[0])[0]
            chosen = next(c for c in ("lsr", "tsla@25", "tsla@15") if kept[c][0] == best)  # ties: the simpler
            diffs.append(kept[chosen][1] - kept["lsr"][1])
    assert _interval(diffs) == quoted
    assert quoted in _doc("README.md") and quoted in _doc("docs/results3.md")
    assert _signs(diffs) in _row(regime, labels, quoted)


@pytest.mark.parametrize("regime, labels, quoted", Q2)
def test_q2_the_negative_end_at_its_last_epoch(regime, labels, quoted):
    runs = _runs(regime)
    diffs = [_kept(runs[(d, s, "lsr-neg@25")], labels, "last")[1] - _kept(runs[(d, s, "lsr")], labels)[1]
             for d in DRAWS for s in SEEDS]
    assert _interval(diffs) == quoted
    assert quoted in _doc("README.md") and quoted in _doc("docs/results3.md")
    assert _signs(diffs) in _row(regime, labels, quoted)


@pytest.mark.parametrize("regime, labels, quoted, best_cell", Q3)
def test_q3_select_against_the_best_fixed_cell(regime, labels, quoted, best_cell):
    """select's default rule by hand: per draw, the cell of highest mean best-validation top-1 over the two seeds
    (ties to the simpler: baseline, LSR, TSLA(15), TSLA(25), the negative end); the comparator, the cell of highest
    mean test top-1 over all 16 pairs."""
    kept = {k: _kept(v, labels) for k, v in _runs(regime).items()}
    means = {c: np.mean([kept[(d, s, c)][1] for d in DRAWS for s in SEEDS]) for c in NAMES}
    assert max(means, key=means.get) == best_cell
    diffs = []
    for d in DRAWS:
        score = {c: np.mean([kept[(d, s, c)][0] for s in SEEDS]) for c in NAMES}
        chosen = next(c for c in NAMES if score[c] == max(score.values()))
        diffs += [kept[(d, s, chosen)][1] - kept[(d, s, best_cell)][1] for s in SEEDS]
    assert _interval(diffs, _digits(quoted)) == quoted
    assert quoted in _doc("README.md") and quoted in _doc("docs/results3.md")
    assert _signs(diffs) in _row(regime, labels, quoted)


@pytest.mark.parametrize("regime", ["sym40", "pair40", "clean", "sym20"])
def test_the_figure_script_draws_the_committed_runs(regime, tmp_path):
    """Each regime's figure is drawn (the clean regime has no noisy labelling: the script raised KeyError on it)."""
    import subprocess
    import sys

    _runs(regime)
    out = tmp_path / "f.png"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "study3_figure.py"), str(RUNS), regime, str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"(figures/study3-{regime}-curves.png)" in \
        (ROOT / "docs" / "results3.md").read_text()


def test_the_figure_script_refuses_a_regime_without_runs_in_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "study3_figure.py"), str(RUNS), "sym30",
                             str(tmp_path / "f.png")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "no finished baseline run" in result.stderr and not (tmp_path / "f.png").exists()


def test_the_committed_analysis_regenerates_byte_for_byte(tmp_path):
    """scripts/study3_analyse.py writes every committed table again, byte for byte, from the committed runs.csv; and
    runs.csv's rows are those of the committed run folders it names (runs committed after the analysis are left
    out until the next one)."""
    import subprocess
    import sys

    evidence = ROOT / "docs" / "evidence" / "study3"
    if not (evidence / "runs.csv").is_file():
        pytest.skip("study 3 has not been analysed yet")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "study3_analyse.py"), "--runs-csv",
                             str(evidence / "runs.csv"), "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=300, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 10
    for name in written:
        assert (tmp_path / name).read_bytes() == (evidence / name).read_bytes(), name
    sys.path.insert(0, str(ROOT / "scripts"))
    from study3_runs import COLUMNS, collect

    from tsla.report.paired import csv_text

    committed = (evidence / "runs.csv").read_text()
    named = {line.split(",")[COLUMNS.index("run")] for line in committed.splitlines()[1:]}
    rows = [r for r in collect(RUNS) if r["run"] in named]
    assert csv_text(rows, COLUMNS) == committed
