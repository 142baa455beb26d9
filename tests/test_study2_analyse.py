"""scripts/study2_analyse.py: the numbers study 2 publishes, checked against hand computations on a small runs.csv."""

import json
import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "study2_analyse.py"


def _load():
    spec = importlib.util.spec_from_file_location("study2_analyse", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(regime, label, draw, seed, best, last, val=80.0):
    return {"regime": regime, "label": label, "method": label, "theta": 0.4, "switch_epoch": None,
            "theta_after": 0.0, "draw": draw, "seed": seed, "noise": "symmetric", "noise_rate": 0.4,
            "val_top1": val, "test_top1": last, "best_val_epoch": 20, "test_top1_at_best_val": best,
            "test_nll": 1.0, "test_ece": 10.0, "noise_memorised_final": 0.2, "commit": "abc"}


def test_paired_contrast_by_draw_and_seed_equals_hand_computation(tmp_path):
    s2 = _load()
    rows = []
    diffs = []
    for draw in (1, 2, 3):
        for seed in range(4):
            d = 0.1 * draw + 0.05 * seed  # a known difference per (draw, seed)
            diffs.append(d)
            rows.append(_row("sym40", "lsr", draw, seed, 70.0 + seed, 69.0))
            rows.append(_row("sym40", "tsla@25", draw, seed, 70.0 + seed + d, 69.0 + 2 * d))
    path = tmp_path / "runs.csv"
    s2.write_csv(path, rows, s2.COLUMNS)
    back = s2.read_runs_csv(path)
    cons = {(r["family"], r["regime"], r["a"], r["b"]): r for r in s2.contrast_rows(back)}
    p = cons[("P", "sym40", "tsla@25", "lsr")]
    assert p["n_pairs"] == 12 and p["n_draws"] == 3
    assert p["mean_diff"] == pytest.approx(np.mean(diffs), abs=1e-9)
    half = 2.200985160082949 * np.std(diffs, ddof=1) / np.sqrt(12)  # t(0.975, 11)
    assert (p["ci_low"], p["ci_high"]) == pytest.approx((np.mean(diffs) - half, np.mean(diffs) + half), abs=1e-6)
    # every difference positive: the exact sign-flip p is 2 / 2^12; family P has one contrast present of its two,
    # so the plan's stopping rule withholds the verdict
    assert p["p_raw"] == pytest.approx(2 / 4096)
    assert p["verdict"] == "interim"
    s1 = cons[("S1", "sym40", "tsla@25", "lsr")]
    assert s1["mean_diff"] == pytest.approx(2 * np.mean(diffs), abs=1e-9)


def test_full_family_gets_a_verdict_and_holm(tmp_path):
    s2 = _load()
    rows = []
    for regime, shift in (("sym40", 1.0), ("pair40", 0.0)):
        for draw in (1, 2, 3):
            for seed in range(4):
                noise = 0.01 * ((draw * 7 + seed * 3) % 5 - 2)  # small spread of both signs: equivalence can be shown
                rows.append(_row(regime, "lsr", draw, seed, 70.0, 70.0))
                rows.append(_row(regime, "tsla@25", draw, seed, 70.0 + shift + noise, 70.0))
    cons = {(r["family"], r["regime"]): r for r in s2.contrast_rows(rows) if r["family"] == "P"}
    assert cons[("P", "sym40")]["verdict"] == "a > b"
    assert cons[("P", "pair40")]["verdict"] == "equivalent (±0.5)"
    assert cons[("P", "sym40")]["p_holm"] == pytest.approx(2 * 2 / 4096)  # Holm over two, smallest p first


def test_select_row_is_the_validation_argmax_and_never_reads_test():
    s2 = _load()
    rows = []
    for label, val, test in (("baseline", 70, 90), ("lsr", 72, 60), ("tsla@15", 71, 95), ("tsla@25", 74, 50),
                             ("tsla@28", 73, 99)):
        rows.append(_row("sym40", label, 1, 0, test, test, val=val))
    derived = s2.derived_rows(rows)
    assert [r["label"] for r in derived] == ["select"]
    assert derived[0]["method"] == "tsla@25"  # the highest validation, though its test is the lowest


def test_superiority_counts_ties_half_and_interval_holds_estimate():
    s2 = _load()
    p, low, high = s2.superiority({1: [1.0, -1.0, 0.0, 2.0], 2: [0.5, 0.5, -0.2, 0.0]})
    assert p == pytest.approx(((1 + 0 + 0.5 + 1) + (1 + 1 + 0 + 0.5)) / 8)  # a tie counts one half
    assert low <= p <= high


def test_variance_split_equals_one_way_anova():
    s2 = _load()
    values = {1: [70.0, 71.0, 72.0, 73.0], 2: [75.0, 75.5, 76.0, 76.5], 3: [68.0, 70.0, 69.0, 71.0]}
    rows = [_row("sym40", "lsr", d, s, v, v) for d, vs in values.items() for s, v in enumerate(vs)]
    out = {(r["measure"], r["label"]): r for r in s2.variance_rows(rows)}["best-val", "lsr"]
    means = {d: np.mean(v) for d, v in values.items()}
    grand = np.mean([x for v in values.values() for x in v])
    msb = 4 * sum((m - grand) ** 2 for m in means.values()) / 2
    msw = sum((x - means[d]) ** 2 for d, v in values.items() for x in v) / 9
    assert out["var_seed"] == pytest.approx(msw)
    assert out["var_draw"] == pytest.approx((msb - msw) / 4)


def test_mixed_model_intercept_of_a_balanced_design_is_the_mean(tmp_path):
    pytest.importorskip("statsmodels")
    s2 = _load()
    rows, diffs = [], []
    for draw, offset in ((1, 0.5), (2, 1.5), (3, 1.0)):
        for seed in range(4):
            d = offset + 0.1 * seed
            diffs.append(d)
            rows.append(_row("sym40", "lsr", draw, seed, 70.0, 70.0))
            rows.append(_row("sym40", "tsla@25", draw, seed, 70.0 + d, 70.0 + d))
    mixed = [r for r in s2.mixed_rows(rows) if r["family"] == "P" and r["regime"] == "sym40"]
    assert len(mixed) == 1
    assert mixed[0]["intercept"] == pytest.approx(np.mean(diffs), abs=1e-6)  # balanced: GLS = the plain mean
    assert mixed[0]["ci_low"] < np.mean(diffs) < mixed[0]["ci_high"]


def test_auto_v3_row_is_the_run_its_switch_epoch_names(tmp_path):
    s2 = _load()
    rows = [_row("sym40", label, 1, 0, 70.0 + i, 70.0 + i) for i, label in enumerate(s2.SELECT_FROM)]
    by_epoch = {r["label"]: r for r in rows}
    for epoch, named in ((25, "tsla@25"), (15, "tsla@15"), (None, "lsr")):
        auto = [r for r in s2.derived_rows(rows, auto_switch=lambda run, e=epoch: e, root=tmp_path)
                if r["label"] == "auto-v3"]
        assert len(auto) == 1 and auto[0]["test_top1"] == by_epoch[named]["test_top1"]


def test_auto_v3_replay_reads_an_lsr_log(tmp_path):
    s2 = _load()
    # noise-gap at the first decay (lr 0.05 -> 0.005 after epoch 14): training top-1 0.60 below the best validation
    # top-1 of the last 5 epochs, 0.70, so the labels disagree with the model and the switch waits for epoch 25
    run = tmp_path / "lsr-seed0"
    run.mkdir()
    records = [{"epoch": e, "lr": 0.05 if e < 15 else (0.005 if e < 25 else 0.0005),
                "next_lr": 0.05 if e < 14 else (0.005 if e < 24 else 0.0005),
                "train_onehot_loss": 1.0, "train_top1": 0.60, "val_top1": 0.70, "val_nll": 1.0} for e in range(30)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert s2._auto_v3()(run) == 25
    for r in records:
        r["train_top1"] = 0.90  # training above validation: no noise seen, the switch comes at the first decay
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert s2._auto_v3()(run) == 15


def test_goal_family_compares_the_derived_cells_with_the_best_fixed_cell_by_validation():
    s2 = _load()
    rows = []
    for draw in (1, 2, 3):
        for seed in range(4):
            # lsr has the higher validation top-1, tsla@25 the higher test top-1: the reference is chosen on validation
            rows.append(_row("sym40", "lsr", draw, seed, 70.0, 69.0, val=75.0))
            rows.append(_row("sym40", "tsla@25", draw, seed, 72.0, 71.0, val=74.0))
            rows.append(_row("sym40", "select", draw, seed, 70.0 + 0.1 * seed, 69.0, val=75.0))
    assert s2.best_fixed(rows, "sym40") == "lsr"
    goals = {(r["measure"], r["a"]): r for r in s2.goal_rows(rows) if r["regime"] == "sym40"}
    g = goals[("best-val", "select")]
    assert g["b"] == "lsr" and g["n_pairs"] == 12
    assert g["mean_diff"] == pytest.approx(np.mean([0.1 * s for s in range(4)]), abs=1e-9)
    assert goals[("last", "select")]["mean_diff"] == pytest.approx(0.0, abs=1e-12)
    # no auto-v3 rows, no other regimes: the family is incomplete, so no verdict
    assert ("best-val", "auto-v3") not in goals and g["verdict"] == "interim"


def _analysed(tmp_path, s2):
    """An --out folder holding an earlier analysis (runs.csv and contrasts.csv) and the bytes of each file."""
    out = tmp_path / "out"
    out.mkdir()
    rows = [_row(r, label, d, s, 70.0, 69.0) for r in ("sym40", "pair40") for label in ("lsr", "tsla@25")
            for d in (1, 2) for s in (0, 1)]
    s2.write_csv(out / "runs.csv", rows, s2.COLUMNS)
    (out / "contrasts.csv").write_text("family,measure\nP,best-val\n")
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def _with_cell(header, line, column, value):
    cells = line.rstrip("\n").split(",")
    cells[header.rstrip("\n").split(",").index(column)] = value
    return ",".join(cells) + "\n"


@pytest.mark.parametrize("case, message", [
    ("missing-dir", "RUNS_DIR {tmp}/nowhere is not a folder"),  # it replaced runs.csv by a header, then IndexError
    ("empty-dir", "no finished run in {tmp}/empty"),
    ("missing-csv", "{tmp}/missing.csv cannot be read (No such file or directory)"),  # FileNotFoundError
    ("empty-csv", "{tmp}/empty.csv has no regime column"),  # IndexError after replacing contrasts.csv
    ("cut-csv", "{tmp}/cut.csv line 5 has fewer cells than the header"),  # float(None) TypeError
    ("text-csv", "{tmp}/text.csv line 2: test_top1 = 'high' is not a finite number"),
    ("cut-metrics", "{tmp}/runs/sym40/d1/lsr-seed0/metrics.jsonl is not JSON"),  # JSONDecodeError
])
def test_unusable_input_is_one_line_exit_2_and_the_earlier_analysis_is_kept(tmp_path, capsys, case, message):
    s2 = _load()
    out, before = _analysed(tmp_path, s2)
    text = (out / "runs.csv").read_text()
    lines = text.splitlines(keepends=True)
    if case == "missing-dir":
        argv = [str(tmp_path / "nowhere")]
    elif case == "empty-dir":
        (tmp_path / "empty").mkdir()
        argv = [str(tmp_path / "empty")]
    elif case == "cut-metrics":  # a finished run whose metrics.jsonl was cut (a copy interrupted)
        run = tmp_path / "runs" / "sym40" / "d1" / "lsr-seed0"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"status": "finished", "best_val": None}))
        (run / "config.yaml").write_text("method: lsr\ntheta: 0.4\nsubset_seed: 1\nseed: 0\n")
        (run / "metrics.jsonl").write_text('{"epoch": 0, "val_top1": 0.5}\n{"epoch": 1, "val_to')
        argv = [str(tmp_path / "runs")]
    else:
        name = case.replace("-csv", ".csv")
        content = {"missing.csv": None, "empty.csv": "", "cut.csv": "".join(lines[:4]) + lines[4][:30],
                   "text.csv": lines[0] + _with_cell(lines[0], lines[1], "test_top1", "high")}[name]
        if content is not None:
            (tmp_path / name).write_text(content)
        argv = ["--runs-csv", str(tmp_path / name)]
    code = s2.main(argv + ["--out", str(out), "--figure", str(out / "profile.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("study2_analyse.py: error: " + message.format(tmp=tmp_path))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing replaced, nothing added


def test_an_out_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    s2 = _load()
    out, _ = _analysed(tmp_path, s2)
    (tmp_path / "afile").write_text("mine")
    code = s2.main(["--runs-csv", str(out / "runs.csv"), "--out", str(tmp_path / "afile"), "--figure",
                    str(tmp_path / "fig" / "profile.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("study2_analyse.py: error: cannot write in ")
    assert (tmp_path / "afile").read_text() == "mine" and not (tmp_path / "fig" / "profile.png").exists()
