"""The engine layer without Ray: the task graph's order and checks, the local engine, the storage marker a task
checks before training, and Ray staying unloaded where it is not asked for."""

import subprocess
import sys

import pytest

from tsla.config import build_config
from tsla.errors import RunDirError
from tsla.experiments.engines import LocalEngine, Task, make_engine, ordered
from tsla.experiments.engines.storage import MARKER, write_marker
from tsla.experiments.grid_tasks import Segment, grid_tasks


def test_dependencies_come_first_and_the_given_order_is_kept_otherwise():
    tasks = [Task("b", int, after=("a@1",)), Task("a", int, after=("a@1",)), Task("a@1", int), Task("c", int)]
    assert [t.name for t in ordered(tasks)] == ["a@1", "b", "a", "c"]


@pytest.mark.parametrize("tasks,message", [
    ([Task("a", int), Task("a", int)], "two tasks are named 'a'"),
    ([Task("a", int, after=("x",))], "task 'a' waits for 'x', which is not among the tasks"),
    ([Task("a", int, after=("b",)), Task("b", int, after=("a",))], "cycle: a -> b -> a"),
])
def test_a_graph_that_cannot_run_is_refused(tasks, message):
    with pytest.raises(ValueError, match=message):
        ordered(tasks)


def test_the_local_engine_runs_in_order_and_stops_at_the_first_failure():
    calls = []

    def job(name, fail=False):
        def run():
            calls.append(name)
            if fail:
                raise RuntimeError(f"{name} broke")
            return name.upper()
        return run

    done = []
    results = LocalEngine().run([Task("late", job("late"), after=("early",)), Task("early", job("early"))],
                                on_done=lambda name, result: done.append((name, result)))
    assert results == {"early": "EARLY", "late": "LATE"} and done == [("early", "EARLY"), ("late", "LATE")]
    calls.clear()
    with pytest.raises(RuntimeError, match="b broke"):
        LocalEngine().run([Task("a", job("a")), Task("b", job("b", True)), Task("c", job("c"))])
    assert calls == ["a", "b"]


def test_a_trunk_is_split_where_its_branches_start(tmp_path):
    cfg = build_config(("t", {"epochs": 6}))
    todo = [(tmp_path / "lsr", cfg, None), (tmp_path / "b3", cfg, (tmp_path / "lsr", 3)),
            (tmp_path / "b5", cfg, (tmp_path / "lsr", 5)), (tmp_path / "b5b", cfg, (tmp_path / "lsr", 5)),
            (tmp_path / "old", cfg, (tmp_path / "finished-earlier", 2))]
    graph = {t.name: (t.after, t.fn.until) for t in grid_tasks(todo, (tmp_path, "token"), cpus=2)}
    assert graph == {"lsr@3": ((), 3), "lsr@5": (("lsr@3",), 5), "lsr": (("lsr@5",), None),
                     "b3": (("lsr@3",), None), "b5": (("lsr@5",), None), "b5b": (("lsr@5",), None),
                     "old": ((), None)}


def test_a_task_that_does_not_see_the_drivers_folder_stops_before_training(tmp_path, tiny_fashion):
    cfg = build_config(("t", {"epochs": 1, "data_root": str(tiny_fashion), "device": "cpu"}))
    out, run = tmp_path / "cmp", tmp_path / "cmp" / "lsr-seed0"
    run.mkdir(parents=True)
    token = write_marker(out)
    assert (out / MARKER).read_text().strip() == token
    for storage, why in (((out, "another"), "holds another token"), ((tmp_path / "elsewhere", token), "is missing")):
        with pytest.raises(RunDirError) as info:
            Segment(run, cfg, None, None, storage)()
        message = str(info.value)
        assert "does not see --out" in message and why in message and "\n" not in message
        assert sorted(p.name for p in run.iterdir()) == []  # nothing trained, nothing written


def test_local_engine_and_import_tsla_leave_ray_unloaded():
    code = ("import sys, tsla, tsla.experiments.compare, tsla.experiments.engines; "
            "from tsla.cli import build_parser; tsla.experiments.engines.make_engine('local'); "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_without_ray_the_ray_engine_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes "import ray" raise ImportError
    with pytest.raises(ValueError, match=r"pip install 'tsla\[ray\]'"):
        make_engine("ray")
