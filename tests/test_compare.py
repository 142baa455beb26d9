"""A tiny 'tsla compare': the runs, the summary a user reads, the plot, and skipping finished runs on re-run."""

import json
import statistics

from tsla.cli import main


def _final_top1(run):
    return json.loads(run.joinpath("metrics.jsonl").read_text().splitlines()[-1])["test_top1"]


def test_tiny_compare(fashion_root, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--preset", "fashion-mnist", "--data-root", str(fashion_root), "--methods", "baseline,tsla@1",
            "--seeds", "0,1", "--epochs", "2", "--milestones", "1", "--train-subset", "256", "--test-subset", "200",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    runs = {p.name for p in out.iterdir() if p.is_dir()}
    assert runs == {"baseline-seed0", "baseline-seed1", "tsla@1-seed0", "tsla@1-seed1"}
    # every run trained with the same settings but its own method and seed
    for name in runs:
        config = (out / name / "config.yaml").read_text()
        assert f"method: {name.split('-seed')[0]}" in config and f"seed: {name[-1]}" in config
        assert "train_subset: 256" in config
    summary = json.loads((out / "summary.json").read_text())
    tops = [_final_top1(out / f"tsla@1-seed{s}") for s in (0, 1)]
    entry = summary["methods"]["tsla@1"]
    assert abs(entry["final"]["test_top1"]["mean"] - statistics.mean(tops)) < 1e-12
    assert abs(entry["final"]["test_top1"]["std"] - statistics.stdev(tops)) < 1e-12
    table = (out / "summary.md").read_text()
    row = f"{100 * statistics.mean(tops):.2f} ± {100 * statistics.stdev(tops):.2f}"
    assert row in table and row in printed
    assert table.index("| baseline") < table.index("| tsla@1")
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # re-running skips every finished run and leaves their files alone
    before = {n: (out / n / "metrics.jsonl").read_text() for n in runs}
    assert main(argv) == 0
    assert capsys.readouterr().out.count("finished, skipped") == 4
    assert before == {n: (out / n / "metrics.jsonl").read_text() for n in runs}

    # an interrupted run (no summary yet) is resumed, not restarted or refused
    (out / "baseline-seed1" / "summary.json").unlink()
    assert main(argv) == 0
    assert "resuming" in capsys.readouterr().out

    # 'tsla report' rebuilds the tables from the finished runs
    (out / "summary.md").unlink()
    assert main(["report", str(out)]) == 0
    assert row in (out / "summary.md").read_text()
