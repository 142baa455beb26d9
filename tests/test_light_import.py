"""``import tsla`` loads the loss, the schedules and the scheduler, not the trainer, torchvision or PIL (issue 21,
item 8); the trainer's public names still resolve on first use. Timing lives in benchmarks/import_time.py."""

import subprocess
import sys

HEAVY = ("torchvision", "PIL", "tsla.training.trainer", "tsla.config", "matplotlib", "ray")


def _run(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()


def test_import_tsla_leaves_the_trainer_torchvision_and_pil_unloaded():
    loaded = _run(f"import sys, tsla, tsla.schedules; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded == ["[]"]


def test_the_trainer_and_the_config_load_on_first_use():
    out = _run("import sys, tsla; from tsla import TrainConfig; import tsla.training.trainer as t; "
               "print(tsla.train is t.train, TrainConfig.__module__, 'torchvision' in sys.modules, "
               "'train' in dir(tsla))")
    assert out == ["True tsla.config True True"]
    assert _run("import tsla\ntry:\n    tsla.nothing\nexcept AttributeError as e:\n    print(e)") == [
        "module 'tsla' has no attribute 'nothing'"]
