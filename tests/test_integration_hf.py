"""The Hugging Face Trainer with TSLA, tsla-auto and a per-step schedule: stopped after 2 epochs (a callback sets
should_training_stop; the Trainer saves its epoch checkpoint), resumed with train(resume_from_checkpoint=True), it
ends exactly as the uninterrupted run (theta at every step, switch epoch, weights); theta follows the schedule's
definition (tests/loops.py). Plus token-level labels with -100 and gradient accumulation against one large batch.

Step checkpoints (issue 21): save_strategy="steps" cut inside an epoch and on an epoch's last optimizer step (written
before the Trainer ends the epoch) resumes exactly as the uninterrupted run; the guards of misuse; eval_loss is plain
cross-entropy; theta and the one-hot loss F are in log_history."""

import json

import pytest
import torch
import torch.nn.functional as F
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
        self.onehots = []  # torch's plain cross-entropy of each training batch: F, computed independently

    def forward(self, x, labels=None, y=None):  # labels named, so that the Trainer passes them on to the loss
        logits = self.net(x)
        if y is not None and torch.is_grad_enabled():  # y: a copy of the labels (the loss takes the labels away)
            self.onehots.append(F.cross_entropy(logits.detach(), y).item())
        return {"logits": logits}


class _Record(transformers.TrainerCallback):
    def __init__(self, scheduler, stop_after=None, stop_at_step=None):
        self.scheduler, self.stop_after, self.stop_at_step, self.thetas = scheduler, stop_after, stop_at_step, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.thetas.append(self.scheduler.get_last_theta())

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.stop_at_step:  # the step checkpoint is written after this, then training stops
            control.should_training_stop = True

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


def _dataset():
    x, y = loops.data()
    return [{"x": x[i], "labels": y[i]} for i in range(loops.N)]


def _train(kind, out, stop_after=None, resume=False, stop_at_step=None, **args):
    scheduler = loops.scheduler(kind)
    record = _Record(scheduler, stop_after, stop_at_step)
    model = Tiny()
    if stop_at_step is not None:
        args.update(save_strategy="steps", save_steps=stop_at_step)
    trainer = SmoothingTrainer(model=model, args=_args(out, **args), train_dataset=_dataset(), smoothing=scheduler,
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


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = {}

    def run(kind):
        if kind not in runs:
            runs[kind] = _train(kind, tmp_path_factory.mktemp(f"full-{kind}"), save_strategy="no")
        return runs[kind]

    return run


@pytest.mark.parametrize("kind,cut", [("auto", 6), ("auto", 8), ("auto", 12), ("tsla", 6), ("tsla", 12),
                                      ("step", 6), ("step", 12)])
def test_step_checkpoint_inside_or_at_the_end_of_an_epoch_resumes_exactly(kind, cut, uninterrupted, tmp_path):
    # cut 8 and 12 land on an epoch's last optimizer step: the checkpoint is written before the Trainer ends the
    # epoch, and the resume starts in the next one. Before issue 21, tsla-auto then crashed one epoch later.
    full, full_sched, full_thetas = uninterrupted(kind)
    _, _, first = _train(kind, tmp_path, stop_at_step=cut)
    rest, sched, rest_thetas = _train(kind, tmp_path, resume=True, save_strategy="no")
    assert first + rest_thetas == full_thetas == pytest.approx(loops.EXPECTED_THETAS[kind], abs=1e-12)
    assert sched.switch_epoch == full_sched.switch_epoch == loops.EXPECTED_SWITCH[kind]
    assert sched.state_dict() == full_sched.state_dict()  # tsla-auto's records too, to the last bit
    assert loops.same_weights(rest.net, full.net)


def test_eval_loss_is_the_plain_cross_entropy(tmp_path):
    x, y = loops.data()
    model = Tiny()
    trainer = SmoothingTrainer(model=model, args=_args(tmp_path, num_train_epochs=1, save_strategy="no"),
                               train_dataset=_dataset(), eval_dataset=_dataset(),
                               smoothing=tsla.SmoothingScheduler(tsla.schedules.constant(0.3)))
    trainer.train()
    with torch.no_grad():
        plain = F.cross_entropy(model.net(x), y).item()
    assert trainer.evaluate()["eval_loss"] == pytest.approx(plain, rel=1e-5)  # before issue 21: the smoothed loss


def test_theta_and_the_onehot_loss_are_in_log_history(tmp_path):
    model = Tiny()
    data = [{**item, "y": item["labels"]} for item in _dataset()]
    trainer = SmoothingTrainer(model=model, args=_args(tmp_path, logging_strategy="steps", logging_steps=loops.STEPS,
                                                       save_strategy="no"),
                               train_dataset=data, smoothing=loops.scheduler("tsla"))
    trainer.train()
    logs = [r for r in trainer.state.log_history if "loss" in r]
    assert [r["smoothing_theta"] for r in logs] == [0.3, 0.3, 0.3, 0.0, 0.0]  # TSLA(3), one log per epoch
    for i, record in enumerate(logs):  # F over the log's 4 steps of 16 examples: the mean of torch's batch losses
        assert record["train_onehot_loss"] == pytest.approx(sum(model.onehots[4 * i:4 * i + 4]) / 4, rel=1e-5)


def _trainer(tmp_path, model=None, scheduler=None, data=None, **args):
    return SmoothingTrainer(model=model or Tiny(), args=_args(tmp_path, save_strategy="no", **args),
                            train_dataset=data or _dataset(), smoothing=scheduler or loops.scheduler("tsla"))


def test_label_smoothing_factor_beside_tsla_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"label_smoothing_factor=0.1\) is ignored beside tsla's loss: set it to 0"):
        _trainer(tmp_path, label_smoothing_factor=0.1)


def test_a_causal_lm_without_shift_labels_is_refused(tmp_path):
    config = transformers.GPT2Config(vocab_size=11, n_positions=8, n_embd=8, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)  # random init, nothing downloaded
    with pytest.raises(ValueError, match="GPT2LMHeadModel is a causal language model.*pass shift_labels=True"):
        _trainer(tmp_path, model=model)
    assert SmoothingTrainer(model=model, args=_args(tmp_path, save_strategy="no"), train_dataset=_dataset(),
                            smoothing=loops.scheduler("tsla"), shift_labels=True).smoothed_loss.shift_labels


def test_smoothed_loss_in_a_plain_trainer_is_refused(tmp_path):
    from tsla.integrations.hf import SmoothedLoss

    trainer = transformers.Trainer(model=Tiny(), args=_args(tmp_path, save_strategy="no"), train_dataset=_dataset(),
                                   compute_loss_func=SmoothedLoss(loops.scheduler("tsla")))
    with pytest.raises(ValueError, match="a Trainer that never moves theta.*use tsla.integrations.hf.SmoothingTrainer"):
        trainer.train()


def test_a_wrong_steps_per_epoch_is_refused_with_the_trainers_count(tmp_path):
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.3, 2), steps_per_epoch=4)
    with pytest.raises(ValueError, match=r"steps_per_epoch=4, but this Trainer takes 2 optimizer steps per epoch "
                                         r"\(4 batches, gradient_accumulation_steps=3\): build it with steps_per_epoch=2"):
        _trainer(tmp_path, scheduler=scheduler, gradient_accumulation_steps=3).train()


def test_a_second_train_of_tsla_auto_without_resume_is_refused(tmp_path):
    trainer = _trainer(tmp_path, scheduler=loops.scheduler("auto"), num_train_epochs=1)
    trainer.train()
    with pytest.raises(ValueError, match="recorded epochs already.*resume a checkpoint, or build a new SmoothingTrainer"):
        trainer.train()


def test_a_negative_theta_schedule_works_through_the_trainer_with_allow_negative_only(tmp_path):
    x, y = loops.data()
    thetas = [0.3, -0.2]  # two_stage(0.3, 1, after=-0.2): one full-batch step per epoch
    # the target: two SGD steps on torch's probability-target cross-entropy at y = (1 - theta) onehot + theta / K
    reference = Tiny()
    for theta in thetas:
        reference.zero_grad()
        labels = (1 - theta) * F.one_hot(y, loops.CLASSES).float() + theta / loops.CLASSES
        F.cross_entropy(reference(x)["logits"], labels).backward()
        with torch.no_grad():
            for p in reference.parameters():
                p -= 0.5 * p.grad
    args = dict(per_device_train_batch_size=loops.N, num_train_epochs=2, save_strategy="no")
    schedule = tsla.schedules.two_stage(0.3, 1, after=-0.2)
    model = Tiny()
    trainer = SmoothingTrainer(model=model, args=_args(tmp_path, **args), train_dataset=_dataset(),
                               smoothing=tsla.SmoothingScheduler(schedule), allow_negative=True)
    trainer.train()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    refusing = SmoothingTrainer(model=Tiny(), args=_args(tmp_path, **args), train_dataset=_dataset(),
                                smoothing=tsla.SmoothingScheduler(schedule))
    with pytest.raises(ValueError, match=r"theta=-0.2 is negative: negative label smoothing is opt-in, pass "
                                         r"allow_negative=True"):
        refusing.train()
