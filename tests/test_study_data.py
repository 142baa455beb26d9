"""The study's data capabilities: symmetric label noise, the validation split, training without augmentation."""

import json

import pytest
import torch

from tsla.config import TrainConfig
from tsla.data import build_data
from tsla.data.label_noise import symmetric_noise
from tsla.data.validation import split_train_val
from tsla.errors import ConfigError
from tsla.training.trainer import train


def test_symmetric_noise_moves_exactly_the_fraction_to_other_classes_uniformly():
    labels = torch.arange(10_000) % 10
    noisy = symmetric_noise(labels, 0.4, 10, seed=3)
    wrong = noisy != labels
    assert int(wrong.sum()) == 4_000  # exactly round(p N) labels, each moved to another class
    assert torch.equal(noisy, symmetric_noise(labels, 0.4, 10, seed=3))  # drawn from the seed alone
    assert not torch.equal(noisy, symmetric_noise(labels, 0.4, 10, seed=4))
    # the new class is uniform over the 9 others: each (true, new) pair about 4000 / 90 = 44 times
    pairs = torch.bincount(labels[wrong] * 10 + noisy[wrong], minlength=100).reshape(10, 10)
    assert int(pairs.diagonal().sum()) == 0
    off = pairs[~torch.eye(10, dtype=torch.bool)].double()
    chi2 = float(((off - off.mean()) ** 2 / off.mean()).sum())
    assert chi2 < 140  # 89 degrees of freedom: the 99.9% point of chi-square is about 136.5 (+ margin)
    assert torch.equal(symmetric_noise(labels, 0.0, 10, seed=3), labels)
    with pytest.raises(ValueError, match="outside"):
        symmetric_noise(labels, 1.0, 10, seed=0)


def test_the_validation_split_is_balanced_disjoint_and_leaves_the_training_subset_unchanged():
    targets = torch.arange(1_000) % 10
    train_only, none = split_train_val(targets, 200, None, seed=0)
    train_idx, val_idx = split_train_val(targets, 200, 100, seed=0)
    assert none is None and torch.equal(train_only, train_idx)  # adding validation changes no training image
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    assert torch.bincount(targets[val_idx]).tolist() == [10] * 10
    full_train, val = split_train_val(targets, None, 100, seed=0)  # no subset: validation leaves the training set
    assert len(full_train) == 900 and not set(full_train.tolist()) & set(val.tolist())
    with pytest.raises(ConfigError, match="--val-size 900 does not fit"):
        split_train_val(targets, 200, 900, seed=0)


def test_a_run_with_noise_and_validation_logs_val_metrics_and_trains_on_the_noisy_labels(tiny_fashion, tmp_path):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), train_subset=20, val_size=10,
                      label_noise=0.5, epochs=2, milestones=[1], batch_size=8, device="cpu", test_every=2,
                      augment=False)
    data = build_data(cfg, torch.device("cpu"))
    assert data.val.num_images == 10 and data.train.num_images == 20
    assert int((data.train_targets != data.train_clean_targets).sum()) == 10
    _, diag_labels = data.diagnostic_examples(10, 1)
    assert set(diag_labels.tolist()) <= set(data.train_clean_targets.tolist())
    train(cfg, tmp_path / "run", progress_bar=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("val_top1" in r and r["val_images"] == 10 for r in rows)
    assert "test_top1" not in rows[0] and rows[1]["test_images"] == 20  # --test-every 2: the last epoch only


def test_no_augment_serves_the_images_as_they_are(tiny_fashion):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), train_subset=20, batch_size=20,
                      device="cpu", augment=False)
    data = build_data(cfg, torch.device("cpu"))
    (first, y1), = list(data.train.epoch(0, 0))
    (second, y2), = list(data.train.epoch(0, 1))
    # the same images in another order, unchanged (an augmented epoch crops and flips them)
    assert torch.allclose(first.flatten(1).sum(1).sort().values, second.flatten(1).sum(1).sort().values)
    assert sorted(y1.tolist()) == sorted(y2.tolist())
    augmented = build_data(TrainConfig(**{**cfg.to_dict(), "augment": True}), torch.device("cpu"))
    (third, _), = list(augmented.train.epoch(0, 1))
    assert not torch.allclose(third.flatten(1).sum(1).sort().values, second.flatten(1).sum(1).sort().values)


def test_study_flags_are_refused_for_folder_data_sets():
    with pytest.raises(ConfigError, match="not yet for --dataset cub"):
        TrainConfig(dataset="cub", model="resnet50", label_noise=0.2)
