"""Checkpoint files: atomic replacement, clear errors, and the progress display a user sees."""

import io

import pytest
import torch

import tsla.training.checkpoint as ckpt
from tsla.errors import RunDirError
from tsla.training.progress import EpochProgress


def _state(next_epoch, weights):
    """The keys a tsla checkpoint must have, with toy values."""
    return {"format": 1, "next_epoch": next_epoch, "model": {"w": weights}, "optimizer": {}, "config": {},
            "history": [], "best": {}, "wall_seconds": 0.0}


def test_failed_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.save_checkpoint(path, _state(3, torch.ones(4)))

    def disk_full(obj, f):
        f.write(b"partial bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(path, _state(4, torch.zeros(4)))
    monkeypatch.undo()
    state = ckpt.load_checkpoint(path)
    assert state["next_epoch"] == 3 and torch.equal(state["model"]["w"], torch.ones(4))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_corrupt_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    ckpt.save_checkpoint(path, {"w": torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RunDirError, match="checkpoint.pt is truncated or corrupt"):
        ckpt.load_checkpoint(path)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    term = _Terminal()
    bar = EpochProgress(True, term)
    update = bar.start(0, 3, 100)
    update(50)
    update(50)
    bar.close()
    # epochs counted from 0, as everywhere a user reads them; tqdm redraws at most every 0.1 s
    assert "epoch 0 of 0-2" in term.getvalue() and "/100 " in term.getvalue()
    pipe = io.StringIO()
    assert EpochProgress(True, pipe).start(0, 3, 100) is None and pipe.getvalue() == ""


def test_the_checked_mid_epoch_fields_are_those_of_the_epoch_state():
    from dataclasses import fields

    from tsla.training.engine import EpochProgressState

    assert ckpt.MID_EPOCH_FIELDS == {f.name for f in fields(EpochProgressState)}
