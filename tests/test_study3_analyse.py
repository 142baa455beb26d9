"""scripts/study3_analyse.py on synthetic run folders whose answers are known by hand (no study-3 data is read).

Three regimes are written as scripts/study3.sh lays them out, 30 epochs per run:
- sym40, complete (8 draws x 2 seeds): TSLA(15) is 0.5 points better on clean validation and exactly +1 point on test
  from epoch 15, so Q1 chooses it in every pair; on the noisy labels it is worse, so Q1 keeps LSR (0 by
  construction). LSR's negative end at its last epoch is LSR's best-val test top-1 ± 0.1 (Q2 "matches").
- clean, complete: every cell is the same trajectory (everything 0 by construction; Q2 is last − best-val).
- pair40, 2 draws only: interim, descriptive.
"""

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "study3_analyse.py"
DRAWS, SEEDS, EPOCHS = range(4, 12), (0, 1), 30


def _load(name):
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trunk(e):
    """LSR's clean validation top-1: rises to 0.70 at epoch 20, then falls 0.005 per epoch."""
    return 0.50 + 0.01 * e if e <= 20 else 0.70 - 0.005 * (e - 20)


def _curves(regime, cell, draw, seed, e):
    """(val, val_noisy, test) of one epoch. ``u`` shifts every cell of a pair alike, so differences are exact."""
    u = 0.001 * ((draw * 3 + seed * 5) % 7 - 3)
    val = _trunk(e)
    test = val - 0.02 + u
    noisy = 0.6 * val
    if regime == "clean":
        return val, None, test
    switch = {"tsla@15": 15, "tsla@25": 25, "lsr-neg@25": 25}.get(cell)
    if cell == "baseline":
        return val - 0.10, noisy - 0.10, test - 0.05
    if cell == "tsla@15" and e >= 15:
        return val + 0.005, noisy - 0.05, test + 0.01
    if cell == "tsla@25" and e >= switch:
        return val - 0.01, noisy - 0.05, test - 0.01
    if cell == "lsr-neg@25" and e >= switch:
        # at epoch 29: LSR's best-val test top-1 (epoch 20) plus or minus 0.1 points, alternating by seed
        best = _trunk(20) - 0.02 + u
        return val - 0.01, noisy - 0.05, (best + (0.001 if seed == 0 else -0.001)) if e == EPOCHS - 1 else test
    return val, noisy, test


def write_run(root, regime, draw, cell, seed, theta=0.4, finished=True, curves=_curves):
    name = f"{cell}-seed{seed}" if cell == "baseline" else f"{cell}-theta{theta:g}-seed{seed}"
    run = root / regime / f"d{draw}" / name
    run.mkdir(parents=True)
    lines = []
    for e in range(EPOCHS):
        val, noisy, test = curves(regime, cell, draw, seed, e)
        record = {"epoch": e, "theta": theta, "val_top1": val, "val_nll": 1.0, "test_top1": test,
                  "test_nll": 1.0 - test, "test_ece": 0.1, "test_ts_ece": 0.02, "ts_temperature": 1.5}
        if noisy is not None:
            record["val_noisy_top1"] = noisy
        lines.append(json.dumps(record))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "summary.json").write_text(json.dumps({"status": "finished" if finished else "running",
                                                  "epochs": EPOCHS, "git_commit": "84831bd"}))
    return run


CELLS = ("baseline", "lsr", "tsla@15", "tsla@25", "lsr-neg@25")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("study3")
    runs = root / "runs"
    for regime, draws in (("sym40", DRAWS), ("clean", DRAWS), ("pair40", (4, 5))):
        for draw in draws:
            for seed in SEEDS:
                for cell in CELLS:
                    write_run(runs, regime, draw, cell, seed)
    for draw in DRAWS:  # the clean regime's theta = 0.1 grid, complete: S2 decides it (the same trajectories)
        for seed in SEEDS:
            for cell in CELLS[1:]:
                write_run(runs, "clean", draw, cell, seed, theta=0.1)
    write_run(runs, "sym40", 4, "lsr", 0, theta=0.1)  # an incomplete theta = 0.1 grid: absent from S2
    write_run(runs, "sym40", 12, "lsr", 0, finished=False)  # still training: not a run of the study yet
    out = root / "out"
    result = _run(runs, "--out", out)
    assert result.returncode == 0, result.stderr
    return runs, out


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _contrast(out, family, question, regime, val_noise, stop_rule="best-val"):
    rows = [r for r in _csv(out / "contrasts.csv") if (r["family"], r["question"], r["regime"], r["val_noise"],
                                                       r["stop_rule"]) == (family, question, regime, val_noise,
                                                                           stop_rule)]
    assert len(rows) == 1
    return rows[0]



def test_stop_rules_by_hand():
    runs = _load("study3_runs")
    values = [0.5, 0.6, 0.6, 0.55, 0.55, 0.55, 0.55, 0.7, 0.7]
    assert runs.stop_epoch(values, "best-val") == 7  # the highest, ties to the earliest
    # patience 5: the best so far is epoch 1 (epoch 2 only ties it); epoch 6 is 5 epochs later without improvement,
    # so training stops there and keeps epoch 1, though epoch 7 would have been better
    assert runs.stop_epoch(values, "patience5") == 1
    assert runs.stop_epoch(values[:6], "patience5") == 1  # the last epoch comes first: the best so far
    assert runs.stop_epoch([0.1, 0.2, 0.3], "patience5") == 2
    assert runs.stop_epoch(values, "last") == 8
    with pytest.raises(ValueError, match="unknown stopping rule"):
        runs.stop_epoch(values, "patience3")


def test_runs_csv_has_a_row_per_run_labelling_and_rule_with_the_kept_epochs_numbers(analysed):
    _, out = analysed
    rows = _csv(out / "runs.csv")
    # 80 sym40 runs x 2 labellings x 3 rules, 80 clean runs x 1 x 3, 20 pair40 runs x 2 x 3; the running one absent
    # (and the theta = 0.1 runs: 64 clean x 3, 1 sym40 x 6)
    assert len(rows) == 80 * 6 + 80 * 3 + 20 * 6 + 64 * 3 + 6
    assert not any("d12" in r["run"] for r in rows)
    mine = {(r["val_noise"], r["stop_rule"]): r for r in rows if r["run"] == "sym40/d5/tsla@15-theta0.4-seed1"}
    u = 0.001 * ((5 * 3 + 1 * 5) % 7 - 3)
    best = mine[("clean", "best-val")]
    assert int(best["epoch"]) == 20 and float(best["val_top1"]) == pytest.approx(70.5)
    assert float(best["test_top1"]) == pytest.approx(100 * (0.70 - 0.02 + u + 0.01), abs=1e-4)
    noisy = mine[("noisy", "best-val")]  # its noisy labels peak before the switch: epoch 14, the trunk's
    assert int(noisy["epoch"]) == 14 and float(noisy["val_top1"]) == pytest.approx(60 * 0.64)
    assert int(mine[("clean", "last")]["epoch"]) == 29
    assert {r["draw"] for r in rows} == {str(d) for d in DRAWS}
    assert {r["theta"] for r in rows if r["run"].split("/")[2].startswith("baseline")} == {"0"}


def test_q1_switch_chosen_on_validation(analysed):
    _, out = analysed
    clean = _contrast(out, "P", "Q1", "sym40", "clean")
    # TSLA(15) chosen in all 16 pairs, exactly +1 point: the exact sign-flip p is 2 / 2^16; Holm over the 9 decided
    # P contrasts (clean 3, sym40 6), two of which share that smallest p: 9 x 2 / 2^16 for both
    assert float(clean["mean_diff"]) == pytest.approx(1.0, abs=1e-4)
    assert float(clean["p_raw"]) == pytest.approx(2 / 2**16)
    assert float(clean["p_holm"]) == pytest.approx(9 * 2 / 2**16)
    assert (clean["verdict"], clean["answer"], float(clean["zero_by_construction"])) == ("a > b", "holds", 0.0)
    # on the noisy labels TSLA(15) peaks before its switch, below LSR: LSR is chosen, 0 by construction
    noisy = _contrast(out, "P", "Q1", "sym40", "noisy")
    assert float(noisy["zero_by_construction"]) == 1.0 and int(noisy["n_zero"]) == 16
    assert (noisy["verdict"], noisy["answer"]) == ("equivalent (±0.5)", "refuted")
    same = _contrast(out, "P", "Q1", "clean", "clean")  # every cell the same run: equivalent by construction
    assert float(same["zero_by_construction"]) == 1.0 and same["answer"] == "refuted"
    derived = [d for d in _csv(out / "derived.csv") if (d["question"], d["regime"], d["val_noise"],
                                                          d["stop_rule"]) == ("Q1", "sym40", "clean", "best-val")]
    assert len(derived) == 16 and {d["a"] for d in derived} == {"tsla@15"}
    # on the noisy labels TSLA(25) ties LSR (the same model until epoch 25): the tie goes to LSR
    noisy_choice = {d["a"] for d in _csv(out / "derived.csv") if (d["question"], d["regime"], d["val_noise"],
                                                                   d["stop_rule"]) == ("Q1", "sym40", "noisy",
                                                                                       "best-val")}
    assert noisy_choice == {"lsr"}
    q4 = [r for r in _csv(out / "q4.csv") if (r["question"], r["regime"]) == ("Q1", "sym40")]
    assert float(q4[0]["noisy_minus_clean"]) == pytest.approx(-1.0, abs=1e-4)
    assert float(q4[0]["a_noisy_minus_clean"]) == pytest.approx(-1.0, abs=1e-4)  # LSR kept, not TSLA(15)


def test_q2_non_inferiority_of_the_negative_end(analysed):
    from scipy import stats

    _, out = analysed
    row = _contrast(out, "P", "Q2", "sym40", "clean")
    diffs = [0.1 if seed == 0 else -0.1 for _ in DRAWS for seed in SEEDS]  # as _curves writes them
    assert float(row["mean_diff"]) == pytest.approx(0.0, abs=1e-4)
    assert float(row["ni_p"]) == pytest.approx(stats.ttest_1samp(diffs, -0.5, alternative="greater").pvalue,
                                               rel=1e-3)
    assert float(row["ni_p_holm"]) < 0.05 and float(row["p_raw"]) > 0.5
    assert row["answer"] == "holds (matches)"
    last = _contrast(out, "P", "Q2", "clean", "clean")  # the last epoch is 4.5 points below the best: fails
    assert float(last["mean_diff"]) == pytest.approx(100 * (_trunk(29) - _trunk(20)), abs=1e-4)
    assert (last["verdict"], last["answer"]) == ("a < b", "fails")
    sup = [r for r in _csv(out / "superiority.csv") if (r["question"], r["regime"], r["val_noise"]) ==
           ("Q2", "sym40", "clean")]
    assert float(sup[0]["p_a_gt_b"]) == 0.5  # 8 pairs above, 8 below


def test_q3_chooses_by_the_frozen_rule(analysed):
    _, out = analysed
    derived = _csv(out / "derived.csv")

    def chosen(question):
        return {d["a"] for d in derived if (d["question"], d["regime"], d["val_noise"], d["stop_rule"]) ==
                (question, "sym40", "clean", "best-val")}
    # best-mean: TSLA(15)'s mean validation top-1 (70.5 %) is the highest; it is also the best fixed cell on test
    assert chosen("Q3") == {"tsla@15"}
    q3 = _contrast(out, "P", "Q3", "sym40", "clean")
    assert float(q3["mean_diff"]) == 0.0 and q3["answer"] == "holds"
    # noise-aware (S6): TSLA(15)'s gain over LSR, 0.005, is below one SE, the validation floor
    # sqrt(0.08 / (2 seeds x 1000)) = 0.0063 (the seeds' SE is 0): it keeps LSR, 1 point below the best
    assert 0.005 < math.sqrt(0.08 / 2000)
    assert chosen("S6") == {"lsr"}
    s6 = _contrast(out, "S6", "S6", "sym40", "clean")
    assert float(s6["mean_diff"]) == pytest.approx(-1.0, abs=1e-4) and s6["answer"] == "fails"


def test_an_incomplete_regime_is_interim_and_descriptive(analysed):
    _, out = analysed
    row = _contrast(out, "P", "Q1", "pair40", "clean")
    assert int(row["n_pairs"]) == 4 and float(row["mean_diff"]) == pytest.approx(1.0, abs=1e-4)
    assert row["verdict"] == "interim, descriptive"
    assert row["p_raw"] == row["p_holm"] == row["tost_p"] == row["answer"] == ""
    assert not any(r["regime"] == "pair40" for r in _csv(out / "mixed.csv"))
    assert "| pair40 | 0.4 | 20 | interim, descriptive" in (out / "results3-tables.md").read_text()


def test_a_rerun_and_runs_csv_alone_give_the_same_bytes(analysed, tmp_path):
    runs, out = analysed
    again, alone = tmp_path / "again", tmp_path / "alone"
    assert _run(runs, "--out", again).returncode == 0
    assert _run("--runs-csv", out / "runs.csv", "--out", alone).returncode == 0
    names = sorted(p.name for p in out.iterdir())
    assert "results3-tables.md" in names and len(names) == 10
    for name in names:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
        assert (alone / name).read_bytes() == (out / name).read_bytes(), name


def _cut(runs):
    path = runs / "sym40" / "d6" / "lsr-theta0.4-seed0" / "metrics.jsonl"
    path.write_text(path.read_text()[:-40])


def _unknown_regime(runs):
    (runs / "sym60" / "d4" / "lsr-theta0.4-seed0").mkdir(parents=True)


def _missing_key(runs):
    path = runs / "pair40" / "d4" / "tsla@25-theta0.4-seed1" / "metrics.jsonl"
    path.write_text(path.read_text().replace('"val_noisy_top1"', '"val_noisy"', 1))


@pytest.mark.parametrize("spoil, message", [
    (_cut, "is not JSON (a cut or edited file)"),
    (_unknown_regime, "is no regime of the plan"),
    (_missing_key, "epoch 0: val_noisy_top1 is missing"),
])
def test_bad_run_folders_are_one_line_exit_2_and_the_earlier_analysis_is_kept(analysed, tmp_path, spoil, message):
    runs, out = analysed
    copy = tmp_path / "runs"
    subprocess.run(["cp", "-r", str(runs), str(copy)], check=True)
    spoil(copy)
    target = tmp_path / "out"
    subprocess.run(["cp", "-r", str(out), str(target)], check=True)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    result = _run(copy, "--out", target)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("study3_analyse.py: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


@pytest.mark.parametrize("content, message", [
    ("", "has no draw column"),
    (None, "line 3 has fewer cells than the header"),
])
def test_a_bad_runs_csv_is_one_line_exit_2(analysed, tmp_path, content, message):
    _, out = analysed
    text = (out / "runs.csv").read_text()
    bad = tmp_path / "runs.csv"
    bad.write_text(content if content is not None else "\n".join(text.splitlines()[:2] + ["4,0,clean"]) + "\n")
    result = _run("--runs-csv", bad, "--out", tmp_path / "out")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_no_run_folder_is_one_line_exit_2(tmp_path):
    result = _run(tmp_path / "nothing", "--out", tmp_path / "out")
    assert result.returncode == 2 and "is not a folder" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run(empty, "--out", tmp_path / "out")
    assert result.returncode == 2 and "no finished run" in result.stderr and not (tmp_path / "out").exists()


def test_s2_holds_only_the_regimes_whose_theta_01_grid_is_complete(analysed):
    _, out = analysed
    s2 = [r for r in _csv(out / "contrasts.csv") if r["family"] == "S2"]
    assert [(r["question"], r["regime"], r["theta"], r["val_noise"]) for r in s2] == [
        ("Q1", "clean", "0.1", "clean"), ("Q2", "clean", "0.1", "clean"), ("Q3", "clean", "0.1", "clean")]
    assert [r["answer"] for r in s2] == ["refuted", "fails", "holds"]  # the same trajectories as at theta = 0.4


def _holm(ps):
    """Holm's adjusted p-values, written out: the k-th smallest times (m - k), running maximum, capped at 1."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - k) * ps[i]))
        out[i] = running
    return out


def test_holm_runs_per_kind_of_p_over_the_decided_contrasts_of_a_family(analysed):
    _, out = analysed
    p = [r for r in _csv(out / "contrasts.csv") if r["family"] == "P" and r["verdict"] != "interim, descriptive"]
    assert len(p) == 9  # clean: Q1-Q3; sym40: Q1-Q3 on each labelling; pair40 is interim
    for kind, adjusted in (("p_raw", "p_holm"), ("tost_p", "tost_p_holm"), ("ni_p", "ni_p_holm")):
        expected = _holm([float(r[kind]) for r in p])
        assert [float(r[adjusted]) for r in p] == pytest.approx(expected, rel=1e-4, abs=1e-12), kind


@pytest.mark.parametrize("question, verdict, ni, word", [
    ("Q1", "a > b", 1.0, "holds"), ("Q1", "a < b", 0.0, "refuted"), ("Q1", "equivalent (±0.5)", 0.0, "refuted"),
    ("Q1", "undecided", 0.0, "undecided"),
    ("Q2", "a > b", 0.01, "holds (beats)"), ("Q2", "undecided", 0.01, "holds (matches)"),
    ("Q2", "equivalent (±0.5)", 0.01, "holds (matches)"), ("Q2", "a < b", 0.2, "fails"),
    ("Q2", "undecided", 0.2, "undecided"),
    ("Q2", "a < b", 0.01, "holds (non-inferior within -0.5) and fails (a < b)"),
    ("Q3", "equivalent (±0.5)", 1.0, "holds"), ("Q3", "a > b", 1.0, "holds"), ("Q3", "a < b", 0.0, "fails"),
    ("Q3", "undecided", 0.0, "undecided"), ("S6", "a < b", 0.0, "fails"),
])
def test_the_plans_words(question, verdict, ni, word):
    assert _load("study3_families").answer(question, verdict, ni) == word


def test_a_metrics_file_cut_at_a_line_end_is_refused(analysed, tmp_path):
    runs, _ = analysed
    copy = tmp_path / "runs"
    subprocess.run(["cp", "-r", str(runs), str(copy)], check=True)
    path = copy / "clean" / "d7" / "baseline-seed1" / "metrics.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:25]))
    result = _run(copy, "--out", tmp_path / "out")
    assert result.returncode == 2 and "holds 25 epochs, though summary.json says the finished run trained 30" \
        in result.stderr and not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_one_line_exit_2_and_left_as_it_was(analysed, tmp_path):
    _, out = analysed
    target = tmp_path / "results"
    target.write_text("my notes\n")
    result = _run("--runs-csv", out / "runs.csv", "--out", target)
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and target.read_text() == "my notes\n"


def test_a_temperature_that_could_not_be_fitted_is_an_empty_cell_not_an_error(analysed, tmp_path):
    runs, _ = analysed
    copy = tmp_path / "runs"
    subprocess.run(["cp", "-r", str(runs), str(copy)], check=True)
    path = copy / "clean" / "d4" / "lsr-theta0.4-seed0" / "metrics.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[20])  # the best-val epoch
    record.update(ts_temperature=float("nan"), test_ts_ece=float("nan"))  # json writes NaN, as the trainer does
    lines[20] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    result = _run(copy, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    row = next(r for r in _csv(tmp_path / "out" / "runs.csv") if r["run"] == "clean/d4/lsr-theta0.4-seed0"
               and r["stop_rule"] == "best-val")
    assert (row["ts_temperature"], row["test_ts_ece"], row["test_top1"]) == ("", "", "68.2")
    s4 = [r for r in _csv(tmp_path / "out" / "contrasts.csv") if (r["family"], r["regime"], r["measure"], r["a"],
                                                                  r["stop_rule"]) ==
          ("S4", "clean", "test_ts_ece", "lsr", "best-val")]
    assert int(s4[0]["n_pairs"]) == 15  # that pair has no calibrated ECE to compare


def test_posthoc_machine_split_by_hand(analysed):
    """Amendment 5's post-hoc line: sym40's P contrasts on draws 4-6 (the first machine) and 7-11 apart; a regime
    trained on one machine has no line. Q2's pairs are +0.1 / -0.1 points by seed: mean 0, interval by hand."""
    from scipy import stats

    _, out = analysed
    rows = _csv(out / "posthoc-machine.csv")
    assert {r["regime"] for r in rows} == {"sym40"}
    q2 = {r["machine"]: r for r in rows if (r["question"], r["val_noise"]) == ("Q2", "clean")}
    assert (q2["first"]["draws"], q2["first"]["n_pairs"]) == ("4 5 6", "6")
    assert (q2["second"]["draws"], q2["second"]["n_pairs"]) == ("7 8 9 10 11", "10")
    for machine, n in (("first", 6), ("second", 10)):
        half = stats.t.ppf(0.975, n - 1) * math.sqrt(n * 0.1 ** 2 / (n - 1)) / math.sqrt(n)
        assert float(q2[machine]["mean_diff"]) == pytest.approx(0.0, abs=1e-9)
        assert float(q2[machine]["ci_high"]) == pytest.approx(half, abs=1e-6)
    q1 = {r["machine"]: float(r["mean_diff"]) for r in rows if (r["question"], r["val_noise"]) == ("Q1", "clean")}
    assert q1 == pytest.approx({"first": 1.0, "second": 1.0}, abs=1e-9)
    assert "## Post hoc (amendment 5)" in (out / "results3-tables.md").read_text()


def test_rule_check_replays_the_frozen_rule_from_git(analysed):
    """scripts/study3_rule_check.py (amendment 5): the select choices with select_rule.py at b9e72e4 and now; the
    synthetic study's choices, at both thetas, are all the same."""
    if subprocess.run(["git", "cat-file", "-e", "b9e72e4"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("a clone without b9e72e4 (shallow)")
    _, out = analysed
    result = subprocess.run([sys.executable, str(SCRIPT.parent / "study3_rule_check.py"), str(out / "runs.csv")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    chosen = {(r["question"], r["regime"], r["theta"], r["val_noise"], r["stop_rule"], r["draw"])
              for r in _csv(out / "derived.csv") if r["question"] in ("Q3", "S6")}
    assert f" {len(chosen)} select choices" in result.stdout and result.stdout.rstrip().endswith(": 0 differ")


def test_p_verdicts_that_stand_for_the_whole_family_use_bonferronis_bound(analysed):
    """Each decided P contrast also carries min(1, 21 × p) for each p and the verdict with those: Q1 in sym40 on
    clean labels is +1 point in all 16 pairs (sign-flip p = 2 / 2^16, so 21 × p < 0.05: "a > b" stands); Q2 there
    is 0 on average, ±0.1 (TOST and non-inferiority p tiny: "equivalent", "holds (matches)")."""
    _, out = analysed
    q1 = _contrast(out, "P", "Q1", "sym40", "clean")
    assert float(q1["p_full_bound"]) == pytest.approx(min(1.0, 21 * float(q1["p_raw"])), rel=1e-6)
    assert float(q1["p_raw"]) == pytest.approx(2 / 2 ** 16, rel=1e-6)
    assert (q1["verdict_full_bound"], q1["answer_full_bound"]) == ("a > b", "holds")
    q2 = _contrast(out, "P", "Q2", "sym40", "clean")
    assert float(q2["ni_p_full_bound"]) == pytest.approx(min(1.0, 21 * float(q2["ni_p"])), rel=1e-6)
    assert (q2["verdict_full_bound"], q2["answer_full_bound"]) == ("equivalent (±0.5)", "holds (matches)")
    assert all(r["p_full_bound"] == "" for r in _csv(out / "contrasts.csv") if r["family"] != "P")
