"""--val-label-noise: the validation split's labels with the training labels' noise process (its own draw), and
both labellings evaluated every epoch from one forward pass."""

import json

import pytest
import torch

from tsla.config import TrainConfig
from tsla.data import build_data
from tsla.data.label_noise import label_noise
from tsla.errors import ConfigError
from tsla.training.trainer import train


def _cfg(root, **kw) -> TrainConfig:
    base = dict(data_root=str(root), train_subset=20, val_size=20, epochs=2, batch_size=10, eval_batch_size=7,
                augment=False, label_noise=0.4, threads=1, lr=0.05, test_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _val_labels(data) -> torch.Tensor:
    return torch.cat([t for _, t in data.val.epoch(0, 0)])


def test_noisy_validation_labels_are_their_own_reproducible_draw(tiny_fashion):
    same = build_data(_cfg(tiny_fashion, val_label_noise="same"), torch.device("cpu"))
    labels = _val_labels(same)  # (N, 2): column 0 noisy (read by val_*), column 1 clean
    noisy, clean = labels[:, 0], labels[:, 1]
    assert labels.shape == (20, 2) and same.val_second == "val_clean_"
    assert int((noisy != clean).sum()) == round(0.4 * 20)  # exactly the training split's noise rate
    # the training labels' draw (their seed) applied to the validation labels is another draw
    training_draw = label_noise(clean, 0.4, "symmetric", "fashion-mnist", 10, 0)
    assert not torch.equal(noisy, training_draw)
    again = _val_labels(build_data(_cfg(tiny_fashion, val_label_noise="same"), torch.device("cpu")))
    assert torch.equal(again, labels)
    # with none, the columns swap: val_* reads the clean labels, val_noisy_* the same noisy draw
    none = build_data(_cfg(tiny_fashion), torch.device("cpu"))
    assert none.val_second == "val_noisy_" and torch.equal(_val_labels(none), labels.flip(1))


def test_both_labellings_logged_and_training_unchanged(tiny_fashion, tmp_path):
    runs = {}
    for mode in ("none", "same"):
        train(_cfg(tiny_fashion, val_label_noise=mode), tmp_path / mode, progress_bar=False, log=open("/dev/null", "w"))
        runs[mode] = [json.loads(x) for x in (tmp_path / mode / "metrics.jsonl").read_text().splitlines()]
        saved = torch.load(tmp_path / mode / "best.pt", weights_only=True)
    for a, b in zip(runs["none"], runs["same"]):
        assert a["train_loss"] == b["train_loss"] and a["test_top1"] == b["test_top1"]  # training never sees them
        assert a["val_top1"] == b["val_clean_top1"] and a["val_noisy_top1"] == b["val_top1"]
        assert a["val_nll"] == b["val_clean_nll"]
    # the logged top-1 on each labelling, recomputed by hand from the final weights
    data = build_data(_cfg(tiny_fashion, val_label_noise="same"), torch.device("cpu"))
    from tsla.models import build_model

    model = build_model(TrainConfig(data_root=str(tiny_fashion)).model, 10, 1)
    model.load_state_dict(torch.load(tmp_path / "same" / "checkpoint.pt", weights_only=True)["model"])
    model.eval()
    images, labels = zip(*data.val.epoch(0, 0))
    with torch.no_grad():
        pred = torch.cat([model(x).argmax(1) for x in images])
    labels = torch.cat(labels)
    last = runs["same"][-1]
    assert last["val_top1"] == pytest.approx(float((pred == labels[:, 0]).double().mean()), abs=1e-12)
    assert last["val_clean_top1"] == pytest.approx(float((pred == labels[:, 1]).double().mean()), abs=1e-12)
    assert saved["val_top1"] == max(r["val_top1"] for r in runs["same"])  # early stopping reads the noisy labels


@pytest.mark.parametrize("kw, text", [
    (dict(val_label_noise="same", label_noise=0.0), "needs --label-noise"),
    (dict(val_label_noise="same", val_size=None), "needs --label-noise (the noise to copy) and --val-size"),
    (dict(val_label_noise="noisy"), "--val-label-noise 'noisy' is unknown: choose none or same"),
])
def test_bad_settings_refused(tiny_fashion, kw, text):
    with pytest.raises(ConfigError, match=text.replace("(", r"\(").replace(")", r"\)")):
        _cfg(tiny_fashion, **kw)
