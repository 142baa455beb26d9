"""The Hugging Face Trainer with TSLA, tsla-auto and a per-step schedule: stopped after 2 epochs (a callback sets
should_training_stop; the Trainer saves its epoch checkpoint), resumed with train(resume_from_checkpoint=True), it
ends exactly as the uninterrupted run (theta at every step, switch epoch, weights); theta follows the schedule's
definition (tests/loops.py). Plus token-level labels with -100 and gradient accumulation against one large batch."""

import json

import pytest
import torch
from torch import nn

import tsla
from tests import loops

transformers = pytest.importorskip("transformers", reason="install the extra: pip install 'tsla[hf]'")
pytest.importorskip("accelerate", reason="install the extra: pip install 'tsla[hf]'")
from tsla.integrations.hf import SmoothingTrainer  # noqa: E402


class Tiny(nn.Module):
    """(..., FEATURES) -> {"logits": (..., CLASSES)}: one linear layer, per example or per token."""

    def __init__(self):
        super().__init__()
        self.net = loops.model()

    def forward(self, x, labels=None):  # labels named, so that the Trainer passes them on to the loss
        return {"logits": self.net(x)}


class _Record(transformers.TrainerCallback):
    def __init__(self, scheduler, stop_after=None):
        self.scheduler, self.stop_after, self.thetas = scheduler, stop_after, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.thetas.append(self.scheduler.get_last_theta())

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.stop_after is not None and round(state.epoch) == self.stop_after:
            control.should_training_stop = True


def _args(out, **kw):
    values = dict(output_dir=str(out), per_device_train_batch_size=loops.BATCH, num_train_epochs=loops.EPOCHS,
                  learning_rate=0.5, lr_scheduler_type="constant", optim="sgd", weight_decay=0.0,
                  save_strategy="epoch", logging_strategy="no", report_to="none", use_cpu=True, seed=0,
                  disable_tqdm=True, dataloader_num_workers=0)
    values.update(kw)
    return transformers.TrainingArguments(**values)


def _train(kind, out, stop_after=None, resume=False):
    x, y = loops.data()
    data = [{"x": x[i], "labels": y[i]} for i in range(loops.N)]
    scheduler = loops.scheduler(kind)
    record = _Record(scheduler, stop_after)
    model = Tiny()
    trainer = SmoothingTrainer(model=model, args=_args(out), train_dataset=data, smoothing=scheduler,
                               callbacks=[record])
    trainer.train(resume_from_checkpoint=True if resume else None)
    return model, scheduler, record.thetas


@pytest.mark.parametrize("kind", loops.KINDS)
def test_resumed_training_equals_uninterrupted(kind, tmp_path):
    full, full_sched, full_thetas = _train(kind, tmp_path / "full")
    _, _, first = _train(kind, tmp_path / "cut", stop_after=loops.CUT)
    rest, sched, rest_thetas = _train(kind, tmp_path / "cut", resume=True)
    assert full_thetas == pytest.approx(loops.EXPECTED_THETAS[kind], abs=1e-12)
    assert first + rest_thetas == full_thetas
    assert sched.switch_epoch == full_sched.switch_epoch == loops.EXPECTED_SWITCH[kind]
    assert sched.state_dict() == full_sched.state_dict()
    assert loops.same_weights(rest.net, full.net)
    saved = json.loads((tmp_path / "cut" / f"checkpoint-{loops.CUT * loops.STEPS}" / "tsla_smoothing.json").read_text())
    assert saved["last_epoch"] == (loops.CUT - 1 if kind != "step" else loops.CUT * loops.STEPS - 1)


def _tokens():
    """8 sequences of 6 tokens, 4 classes; -100 on a ragged tail so the two halves keep 11 and 19 labels."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 6, loops.FEATURES, generator=g)
    labels = torch.randint(0, loops.CLASSES, (8, 6), generator=g)
    keep = torch.tensor([2, 3, 1, 5, 6, 6, 4, 3])  # the first 4 sequences keep 11 labels, the last 4 keep 19
    labels[torch.arange(6) >= keep[:, None]] = -100
    return x, labels


def test_token_labels_and_gradient_accumulation_match_one_large_batch(tmp_path):
    x, labels = _tokens()
    theta = 0.2
    # the target: one SGD step on the mean smoothed loss over the 30 kept tokens, by torch's own loss
    reference = Tiny()
    kept = labels != -100
    loss = nn.functional.cross_entropy(reference(x)["logits"][kept], labels[kept], label_smoothing=theta)
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.5 * p.grad
    # the Trainer: two micro-batches of 4 sequences (11 and 19 tokens), accumulated into one optimizer step
    model = Tiny()
    data = [{"x": x[i], "labels": labels[i]} for i in range(8)]
    args = _args(tmp_path, per_device_train_batch_size=4, gradient_accumulation_steps=2, num_train_epochs=1,
                 save_strategy="no")
    trainer = SmoothingTrainer(model=model, args=args, train_dataset=data,
                               smoothing=tsla.SmoothingScheduler(tsla.schedules.constant(theta)))
    trainer.train()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_resume_needs_the_smoothing_state(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    trainer = SmoothingTrainer(model=Tiny(), args=_args(tmp_path), train_dataset=[{"x": torch.zeros(8),
                               "labels": torch.tensor(0)}], smoothing=loops.scheduler("tsla"))
    with pytest.raises(ValueError, match="tsla_smoothing.json is missing"):
        trainer.train(resume_from_checkpoint=True)
