"""docs/errors.md, second table: each row's Python call raises the documented exception with a one-line message
containing the last column. The helpers below build the tiny objects of tests/loops.py; a row whose framework is
not installed is skipped."""

import importlib
import re
from pathlib import Path

import pytest
import torch

import tsla
import tsla.integrations.trial  # noqa: F401  (rows call tsla.integrations.trial.trial_scheduler)
from tsla.integrations.pytorch import end_epoch
from tsla.smoothing.auto_switch import AutoSwitch

from tests import loops

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
FRAMEWORKS = {"lightning": "lightning.pytorch", "hf": "transformers", "timm": "timm"}
OUT = {}  # "dir": the running row's tmp_path, where the HF helpers put their output_dir


def _rows():
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"L\d+", cells[0]):
            rows.append(pytest.param(cells, id=cells[0]))
    return rows


def resumed_switch(after_epoch):
    saved = AutoSwitch("plateau", window=2, tolerance=0.01)
    for epoch in range(after_epoch + 1):
        saved.update(epoch, 2.0 - epoch / 10)
    switch = AutoSwitch("plateau", window=2, tolerance=0.01)
    switch.load_state_dict(saved.state_dict())
    return switch


def stepped(steps_per_epoch, steps):
    scheduler = tsla.SmoothingScheduler(tsla.schedules.linear(0.3, 4), steps_per_epoch=steps_per_epoch)
    for _ in range(steps):
        scheduler.step()
    return scheduler


def lightning_fit(steps_per_epoch=None, save_hyperparameters=False, schedule=None, auto_rule=None, **trainer_kw):
    import lightning.pytorch as L

    from tests.test_integration_lightning import KeepsHparams, Tiny
    from tsla.integrations.lightning import SmoothingCallback

    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    if auto_rule == "noise-gap":  # the constants of docs/selection.md's example
        scheduler = tsla.SmoothingScheduler.auto_two_stage(0.3, "noise-gap", val_window=5, margin=0.0, last_decay=3)
    else:
        scheduler = tsla.SmoothingScheduler(schedule or tsla.schedules.linear(0.3, 4), steps_per_epoch=steps_per_epoch)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    trainer = L.Trainer(max_epochs=trainer_kw.pop("max_epochs", 1), accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        callbacks=[SmoothingCallback(scheduler, criterion)], **trainer_kw)
    trainer.fit((KeepsHparams if save_hyperparameters else Tiny)(criterion), loader)


def hf_trainer(model=None, steps_per_epoch=None, auto=False, schedule=None, **args):
    from tests.test_integration_hf import Tiny, _args, _dataset
    from tsla.integrations.hf import SmoothingTrainer

    scheduler = loops.scheduler("auto") if auto else tsla.SmoothingScheduler(
        schedule or tsla.schedules.linear(0.3, 4), steps_per_epoch=steps_per_epoch)
    out = Path(OUT["dir"]) / "hf"
    return SmoothingTrainer(model=model or Tiny(), args=_args(out, save_strategy="no", **args),
                            train_dataset=_dataset(), smoothing=scheduler)


def hf_trained_auto():
    trainer = hf_trainer(auto=True, num_train_epochs=1)
    trainer.train()
    return trainer


def plain_hf_trainer():
    import transformers

    from tests.test_integration_hf import Tiny, _args, _dataset
    from tsla.integrations.hf import SmoothedLoss

    return transformers.Trainer(model=Tiny(), args=_args(Path(OUT["dir"]) / "plain", save_strategy="no"),
                                train_dataset=_dataset(), compute_loss_func=SmoothedLoss(loops.scheduler("tsla")))


def tiny_gpt2():
    import transformers

    return transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=11, n_positions=8, n_embd=8, n_layer=1,
                                                                n_head=2))


def timm_loss(auto=False):
    from tsla.integrations.timm import SmoothingLoss

    return SmoothingLoss(loops.scheduler("auto") if auto else tsla.schedules.two_stage(0.1, 2))


def timm_epoch(steps_per_epoch, updates):
    from tsla.integrations.timm import SmoothingLoss

    loss = SmoothingLoss(tsla.SmoothingScheduler(tsla.schedules.linear(0.3, 4), steps_per_epoch=steps_per_epoch))
    loss.set_epoch(0)
    for n in range(1, updates + 1):
        loss.step_update(n)
    return loss


def logits():
    return torch.randn(8, 10, generator=torch.Generator().manual_seed(0))


def mixup_targets(label_smoothing):
    from timm.data import Mixup

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 4, 4, generator=g), torch.randint(0, 10, (8,), generator=g)
    return Mixup(mixup_alpha=1.0, num_classes=10, label_smoothing=label_smoothing)(x, y)[1]


def closed_stream():
    import io

    stream = io.StringIO()
    stream.close()
    return stream


def test_the_library_table_is_there():
    assert len(_rows()) >= 16


@pytest.mark.parametrize("row", _rows())
def test_row(row, tmp_path):
    number, problem, call, setup, raises, message = row
    if setup != "-":
        pytest.importorskip(FRAMEWORKS[setup], reason=f"install the extra: pip install 'tsla[{setup}]'")
    OUT["dir"] = tmp_path
    exception = getattr(importlib.import_module("builtins"), raises)
    with pytest.raises(exception) as info:
        eval(call.strip("`"), globals())
    text = str(info.value)
    assert "\n" not in text, f"row {number}: {text!r}"
    assert message in text, f"row {number} ({problem}): {message!r} not in {text!r}"
