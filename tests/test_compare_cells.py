"""Compare grids with cells of their own theta, theta_after or length (--methods tsla@30:theta_after=-0.2,
tsla@30:epochs=35, reverse@20:theta=-0.2), each branching from the run it shares its first epochs with."""

import json

import pytest

from tsla.cli import main
from tsla.errors import ConfigError
from tsla.experiments.grid import parse_cell, plan


def test_cells_set_their_own_fields_and_branch_from_the_run_they_share_epochs_with():
    layers = [("test", dict(dataset="fashion-mnist", epochs=4, milestones=[2], theta=0.4, device="cpu", threads=1,
                            allow_negative=True, theta_after=-0.1))]
    grid = plan(layers, ["baseline", "lsr", "tsla@3", "tsla@3:theta_after=-0.2", "tsla@4:epochs=6",
                         "reverse@2:theta=-0.2"], [0])
    by_name = {g.name: g for g in grid}
    assert list(by_name) == ["baseline-seed0", "lsr-seed0", "tsla@3-seed0", "tsla@3-after-0.2-seed0",
                             "tsla@4-epochs6-seed0", "reverse@2-theta-0.2-seed0"]
    cfg = {name: (g.cfg.method, g.cfg.theta, g.cfg.theta_after, g.cfg.epochs) for name, g in by_name.items()}
    assert cfg == {"baseline-seed0": ("baseline", 0.4, 0.0, 4), "lsr-seed0": ("lsr", 0.4, 0.0, 4),
                   "tsla@3-seed0": ("tsla@3", 0.4, -0.1, 4),  # the grid's --theta-after: tsla@S runs only
                   "tsla@3-after-0.2-seed0": ("tsla@3", 0.4, -0.2, 4), "tsla@4-epochs6-seed0": ("tsla@4", 0.4, -0.1, 6),
                   "reverse@2-theta-0.2-seed0": ("reverse@2", -0.2, 0.0, 4)}
    assert {name: g.branch for name, g in by_name.items() if g.branch} == {
        "tsla@3-seed0": ("lsr-seed0", 3), "tsla@3-after-0.2-seed0": ("lsr-seed0", 3),
        "tsla@4-epochs6-seed0": ("lsr-seed0", 4), "reverse@2-theta-0.2-seed0": ("baseline-seed0", 2)}
    assert by_name["lsr-seed0"].cfg.keep_epochs == [3, 4] and by_name["baseline-seed0"].cfg.keep_epochs == [2]
    # with a theta grid, a cell with its own theta runs once per seed, as the baseline does
    names = [g.name for g in plan(layers, ["lsr", "reverse@2:theta=-0.2"], [0], thetas=[0.1, 0.4])]
    assert names == ["lsr-theta0.1-seed0", "lsr-theta0.4-seed0", "reverse@2-theta-0.2-seed0"]


@pytest.mark.parametrize("entry, message", [("tsla@3:after=-0.2", "'after=-0.2' is not field=value"),
                                            ("tsla@3:epochs=x", "'x' is not a valid epochs"),
                                            ("tsla@3:theta", "'theta' is not field=value")])
def test_bad_cells_are_named(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_cell(entry)


def test_a_compare_grid_of_cells_trains_sources_first_and_reports_each_cell(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--data-root", str(tiny_fashion), "--train-subset", "16", "--test-subset", "10",
            "--epochs", "2", "--milestones", "1", "--batch-size", "8", "--device", "cpu", "--theta", "0.3",
            "--allow-negative", "--methods", "tsla@1:theta_after=-0.2,tsla@2:epochs=3,lsr", "--seeds", "0",
            "--jobs", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    started = [line.split()[1] for line in printed.splitlines() if line.startswith("started ")]
    assert started[0] == str(out / "lsr-seed0")  # the source first, though listed last
    thetas = {name: [json.loads(x)["theta"] for x in (out / name / "metrics.jsonl").read_text().splitlines()]
              for name in ("lsr-seed0", "tsla@1-after-0.2-seed0", "tsla@2-epochs3-seed0")}
    assert thetas == {"lsr-seed0": [0.3, 0.3], "tsla@1-after-0.2-seed0": [0.3, -0.2],
                      "tsla@2-epochs3-seed0": [0.3, 0.3, 0.0]}
    for name, at in (("tsla@1-after-0.2-seed0", 1), ("tsla@2-epochs3-seed0", 2)):
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["branched_from"] == {"run": str(out / "lsr-seed0"), "at_epoch": at}
    labels = json.loads((out / "summary.json").read_text())["labels"]
    assert labels == ["lsr", "tsla@1:theta_after=-0.2", "tsla@2:epochs=3"]
