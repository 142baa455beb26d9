"""``tsla.select(..., engine="ray")`` on a real local Ray (started here on 127.0.0.1 with 2 CPUs, stopped after):
the same runs, the same numbers and the same selection.json as the local engine, each run cut at its branch points;
an interrupted Ray select rerun locally continues to the same choice."""

import json
import os

import pytest

import tsla

from .select_loops import CountingLoop

ray = pytest.importorskip("ray", reason="the Ray engine's tests need Ray: pip install 'tsla[ray]' (CI installs it)")

REQUEST = dict(thetas=[0.1, 0.4], switch_at=[2], theta_after=[0.0, -0.2], epochs=4, seeds=[0, 1], n_val=60)


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def _reports(out, name):
    return [json.loads(x) for x in (out / name / "reports.jsonl").read_text().splitlines()]


def test_select_on_ray_equals_the_local_engine(cluster, tmp_path):
    local = tsla.select(CountingLoop(), out=tmp_path / "local", log=open(os.devnull, "w"), **REQUEST)
    remote = tsla.select(CountingLoop(), out=tmp_path / "ray", engine="ray", log=open(os.devnull, "w"), **REQUEST)
    assert (tmp_path / "ray" / "selection.json").read_text() == (tmp_path / "local" / "selection.json").read_text()
    assert remote.trained_this_call == local.trained_this_call == 2 * (4 + 2 * (4 + 2 + 2))
    for run in (tmp_path / "local").glob("*-seed*"):
        assert _reports(tmp_path / "ray", run.name) == _reports(tmp_path / "local", run.name), run.name
    # a branch's epochs before its switch are its trunk's; from S on it trained with its own theta
    branch = _reports(tmp_path / "ray", "tsla@2-after-0.2-theta0.1-seed1")
    assert [r["theta"] for r in branch] == [0.1, 0.1, -0.2, -0.2]


def test_a_worker_that_fails_midway_then_a_rerun_gives_the_same_selection(cluster, tmp_path):
    with pytest.raises(RuntimeError, match="killed"):
        tsla.select(CountingLoop(fail_at=("lsr-theta0.4-seed1", 3)), out=tmp_path / "cut", engine="ray",
                    log=open(os.devnull, "w"), **REQUEST)
    assert not (tmp_path / "cut" / "selection.json").exists()
    again = tsla.select(CountingLoop(), out=tmp_path / "cut", engine="ray", log=open(os.devnull, "w"), **REQUEST)
    whole = tsla.select(CountingLoop(), out=tmp_path / "whole", log=open(os.devnull, "w"), **REQUEST)
    assert (tmp_path / "cut" / "selection.json").read_text() == (tmp_path / "whole" / "selection.json").read_text()
    assert again.chosen == whole.chosen


def test_the_command_line_select_on_ray_chooses_as_locally(cluster, tmp_path, capsys):
    from tsla.cli import main

    from .test_select import _argv, _fake_fashion

    data = _fake_fashion(tmp_path / "data")
    picked = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        assert main(_argv(data, out, "--seeds", "0", "--switch-at", "1", "--engine", engine)) == 0
        picked[engine] = json.loads((out / "selection.json").read_text())
    for key in ("chosen", "candidates", "stop_epochs", "recommended_epochs", "test", "epochs_trained"):
        assert picked["ray"][key] == picked["local"][key], key
