"""Tests for tsla.report on hand-made run directories; expected numbers are computed by hand in each test."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import yaml

from tsla.errors import RunDirError, TslaError
from tsla.report import collect_runs, format_markdown, run_labels, summarize, write_report

# test_top1 per epoch (epochs 0..3); the last value is the final accuracy.
CURVES = {
    ("baseline", 0): [0.50, 0.70, 0.78, 0.80],  # never reaches the baseline mean 0.82
    ("baseline", 1): [0.55, 0.75, 0.83, 0.84],  # reaches it after 3 epochs
    ("lsr", 0): [0.60, 0.81, 0.83, 0.82],  # 3 epochs
    ("lsr", 1): [0.65, 0.83, 0.85, 0.86],  # 2 epochs
    ("tsla@2", 0): [0.70, 0.84, 0.85, 0.85],  # 2 epochs
    ("tsla@2", 1): [0.83, 0.86, 0.87, 0.87],  # 1 epoch
}


def make_run(root: Path, method: str, seed: int, top1: list[float], theta: float = 0.1, finished: bool = True,
             name: str | None = None) -> Path:
    """Write a fake run directory; the one-hot loss and test loss depend on seed so stds are nonzero."""
    run = root / (name or f"{method}-seed{seed}")
    run.mkdir(parents=True)
    rows = []
    for epoch, acc in enumerate(top1):
        rows.append({"epoch": epoch, "lr": 0.1, "theta": theta, "train_loss": 1.0 / (epoch + 1),
                     "train_onehot_loss": (0.5 + 0.1 * seed) / (epoch + 1), "train_top1": acc + 0.05,
                     "test_loss": 0.6 + 0.02 * seed - 0.05 * epoch, "test_top1": acc, "test_top5": min(1.0, acc + 0.1),
                     "epoch_seconds": 2.0, "train_images_per_second": 1000.0, "diag_extra": float(seed)})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    switch = int(method.split("@")[1]) if method.startswith("tsla@") else None
    config = {"method": method, "theta": theta, "seed": seed, "epochs": len(top1), "dataset": "fashion-mnist",
              "model": "resnet8"}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    if finished:
        best = max(range(len(top1)), key=lambda e: top1[e])
        summary = {"status": "finished", "method": method, "theta": theta, "seed": seed, "epochs": len(top1),
                   "switch_epoch": switch, "final": rows[-1], "best": {"test_top1": top1[best], "epoch": best},
                   "wall_seconds": 8.0 + seed, "git_commit": None, "versions": {}, "config": config}
        (run / "summary.json").write_text(json.dumps(summary))
    return run


@pytest.fixture
def compare_dir(tmp_path: Path) -> Path:
    root = tmp_path / "cmp"
    for (method, seed), curve in CURVES.items():
        make_run(root, method, seed, curve)
    make_run(root, "tsla@3", 0, [0.1, 0.2], finished=False)  # unfinished: skipped
    return root


def sample_std(xs: list[float]) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def test_summary_statistics_match_hand_computation(compare_dir: Path) -> None:
    notes: list[str] = []
    runs = collect_runs([compare_dir], notes)
    assert len(runs) == 6
    assert any("tsla@3-seed0" in n and "unfinished" in n for n in notes)
    s = summarize(runs)
    assert s["labels"] == ["baseline", "lsr", "tsla@2"]
    base = s["methods"]["baseline"]
    assert base["n_seeds"] == 2 and base["seeds"] == [0, 1]
    assert base["final"]["test_top1"]["mean"] == pytest.approx(0.82)
    assert base["final"]["test_top1"]["std"] == pytest.approx(math.sqrt((0.02**2 * 2) / 1))
    assert s["methods"]["lsr"]["final"]["test_top1"]["mean"] == pytest.approx(0.84)
    assert s["methods"]["tsla@2"]["final"]["test_top1"]["std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    # one-hot loss at epoch 3: (0.5 + 0.1 * seed) / 4 -> 0.125, 0.15
    onehot = s["methods"]["lsr"]["final"]["train_onehot_loss"]
    assert onehot["mean"] == pytest.approx(0.1375)
    assert onehot["std"] == pytest.approx(math.sqrt(2 * 0.0125**2))
    assert s["methods"]["lsr"]["final"]["test_top5"]["mean"] == pytest.approx(0.94)
    assert s["methods"]["lsr"]["final"]["test_loss"]["mean"] == pytest.approx(0.46)
    assert s["methods"]["lsr"]["best_test_top1"]["mean"] == pytest.approx((0.83 + 0.86) / 2)
    assert s["methods"]["lsr"]["final"]["diag_extra"]["mean"] == pytest.approx(0.5)  # extra numeric keys too
    assert s["baseline_final_test_top1"] == pytest.approx(0.82)
    # first epoch (1-based) with top1 >= 0.82: baseline: never / 3; lsr: 3 / 2; tsla@2: 2 / 1
    assert s["epochs_to_reach_baseline"] == {"baseline": 3.0, "lsr": 2.5, "tsla@2": 1.5}
    assert s["methods"]["baseline"]["epochs_to_reach_baseline"]["per_seed"] == [None, 3]
    assert s["methods"]["lsr"]["epochs_to_reach_baseline"]["std"] == pytest.approx(sample_std([3, 2]))
    rows = {(r["label"], r["seed"]): r for r in s["runs"]}
    assert len(rows) == 6
    assert rows[("lsr", 1)]["final_test_top1"] == 0.86 and rows[("lsr", 1)]["wall_seconds"] == 9.0


def test_markdown_cells_and_order(compare_dir: Path) -> None:
    md = format_markdown(summarize(collect_runs([compare_dir], [])))
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| method | seeds | θ off from epoch | final top-1 (%)")
    assert "| 2 (0, 1) | 2 |" in lines[3]  # tsla@2: smoothing off from epoch 2
    assert [line.split("|")[1].strip() for line in lines[1:]] == ["baseline", "lsr", "tsla@2"]
    std_pct = 100 * math.sqrt(2 * 0.02**2)  # 2.828...
    assert f"| 82.00 ± {std_pct:.2f} |" in lines[1] and f"| 84.00 ± {std_pct:.2f} |" in lines[2] and "| 86.00 ± 1.41 |" in lines[3]
    assert "| 0.1375 ± 0.0177 |" in lines[2]  # one-hot loss, 4 decimals
    assert "| 3.0 (1/2 seeds) |" in lines[1] and "2.5 ± 0.7" in lines[2] and "1.5 ± 0.7" in lines[3]
    assert "2 (0, 1)" in lines[1]
    assert "sample standard deviation over seeds" in md


def test_write_report_outputs(compare_dir: Path, tmp_path: Path) -> None:
    summary = write_report([compare_dir])
    assert (compare_dir / "summary.md").read_text() == format_markdown(summary)
    data = json.loads((compare_dir / "summary.json").read_text())
    assert data["labels"] == ["baseline", "lsr", "tsla@2"] and len(data["run_paths"]) == 6
    assert any("unfinished" in n for n in data["notes"])
    png = compare_dir / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # the report's own summary.json does not make the directory look like a run: a rerun gives the same result
    assert write_report([compare_dir])["labels"] == summary["labels"]
    out = tmp_path / "elsewhere"
    write_report([compare_dir], out)
    assert (out / "summary.md").is_file() and (out / "curves.png").is_file()


def test_single_run_dir_and_single_seed(tmp_path: Path) -> None:
    run = make_run(tmp_path, "tsla@2", 3, [0.5, 0.6, 0.7])
    summary = write_report([run])
    m = summary["methods"]["tsla@2"]
    assert m["n_seeds"] == 1 and m["final"]["test_top1"] == {"mean": 0.7, "std": 0.0, "n": 1}
    assert m["switch_epoch"] == 2
    assert summary["epochs_to_reach_baseline"] == {"tsla@2": None}  # no baseline
    assert "n/a (no baseline)" in (run / "report" / "summary.md").read_text()
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"  # run summary untouched


def test_theta_labels_and_natural_order(tmp_path: Path) -> None:
    root = tmp_path / "cmp"
    for method in ("linear@10", "tsla@10", "cosine@5", "tsla@2", "baseline"):
        make_run(root, method, 0, [0.5, 0.6])
    make_run(root, "lsr", 0, [0.5, 0.6], theta=0.2, name="lsr-t0.2-seed0")
    make_run(root, "lsr", 0, [0.5, 0.6], theta=0.1, name="lsr-t0.1-seed0")
    make_run(root, "baseline", 1, [0.5, 0.6], theta=0.3)  # baseline's theta plays no part: one label
    runs = collect_runs([root], [])
    assert set(run_labels(runs)) >= {"lsr (θ=0.1)", "lsr (θ=0.2)", "baseline"}
    assert summarize(runs)["labels"] == ["baseline", "lsr (θ=0.1)", "lsr (θ=0.2)", "tsla@2", "tsla@10",
                                         "cosine@5", "linear@10"]


def test_duplicates_across_dirs_keep_first_and_warn(tmp_path: Path) -> None:
    first = make_run(tmp_path / "a", "lsr", 0, [0.5, 0.9])
    make_run(tmp_path / "b", "lsr", 0, [0.5, 0.1])
    make_run(tmp_path / "b", "lsr", 1, [0.5, 0.7])
    with pytest.warns(UserWarning, match="duplicate"):
        runs = collect_runs([tmp_path / "a", tmp_path / "b"])
    assert [(r.seed, r.path) for r in runs][0] == (0, first) and len(runs) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        notes: list[str] = []
        collect_runs([tmp_path / "a", tmp_path / "b"], notes)
    assert len(notes) == 1 and "duplicate" in notes[0]


def test_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(RunDirError, match="nope"):
        write_report([missing])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunDirError, match="tsla compare"):
        write_report([empty])
    make_run(tmp_path / "unfinished", "lsr", 0, [0.5], finished=False)
    with pytest.raises(TslaError, match="no finished runs"):
        write_report([tmp_path / "unfinished"])
