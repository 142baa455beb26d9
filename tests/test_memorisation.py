"""Pair label noise (a hand count) and the memorisation instruments logged per epoch (a hand count over the
training images with each epoch's kept weights)."""

import json

import pytest
import torch

from tsla.config import TrainConfig
from tsla.data import build_data
from tsla.data.fashion_mnist import MEAN, STD
from tsla.data.label_noise import pair_noise, pair_partners, symmetric_noise
from tsla.errors import ConfigError
from tsla.models import build_model
from tsla.training.trainer import config_differences, train

INSTRUMENTS = ("train_eval_top1", "train_clean_top1", "noise_memorised", "noise_corrected", "gen_gap")


def test_pair_noise_flips_exactly_the_fraction_each_to_its_partner():
    labels = torch.arange(200) % 10
    noisy = pair_noise(labels, 0.4, pair_partners("fashion-mnist", 10), seed=3)
    flipped = noisy != labels
    assert int(flipped.sum()) == 80  # round(0.4 * 200)
    pairs = {0: 6, 6: 0, 2: 4, 4: 2, 5: 7, 7: 5, 1: 3, 3: 1, 8: 9, 9: 8}  # T-shirt/Shirt, Pullover/Coat, ...
    assert all(int(n) == pairs[int(c)] for c, n in zip(labels[flipped], noisy[flipped]))
    # the same images as symmetric noise at this seed: only where they go differs
    assert torch.equal(flipped, symmetric_noise(labels, 0.4, 10, seed=3) != labels)
    cifar = pair_noise(labels, 0.4, pair_partners("cifar10", 10), seed=3)
    assert all(int(n) == (int(c) + 1) % 10 for c, n in zip(labels[flipped], cifar[flipped]))
    assert torch.equal(pair_noise(labels, 0.0, pair_partners("cifar10", 10), seed=3), labels)


def test_pair_noise_needs_label_noise_and_a_known_type():
    with pytest.raises(ConfigError, match="--label-noise-type pair has no effect without --label-noise"):
        TrainConfig(label_noise_type="pair")
    with pytest.raises(ConfigError, match="--label-noise-type 'flip' is unknown"):
        TrainConfig(label_noise=0.2, label_noise_type="flip")


def test_a_config_saved_before_label_noise_type_existed_still_resumes():
    cfg = TrainConfig()
    saved = {k: v for k, v in cfg.to_dict().items() if k != "label_noise_type"}
    assert config_differences(saved, cfg) == []
    assert config_differences(saved, TrainConfig(label_noise=0.1, label_noise_type="pair")) == [
        "label_noise", "label_noise_type"]


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_memorisation_fractions_equal_a_hand_count(fashion_root, tmp_path):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(fashion_root), model="resnet8", train_subset=60,
                      val_size=20, test_subset=20, epochs=2, batch_size=10, device="cpu", augment=True,
                      label_noise=0.4, label_noise_type="pair", lr=0.2, keep_checkpoints=1, threads=1)
    train(cfg, tmp_path / "run", progress_bar=False)
    data = build_data(cfg, torch.device("cpu"))
    given, clean = data.train_targets, data.train_clean_targets
    flipped = given != clean
    assert int(flipped.sum()) == 24 and torch.equal(given[flipped], torch.tensor(
        pair_partners("fashion-mnist", 10))[clean[flipped]])
    images = (data.train.images.float() / 255 - MEAN[0]) / STD[0]  # the training images, not augmented
    model = build_model("resnet8", 10, 1)
    for row in _rows(tmp_path / "run"):
        state = torch.load(tmp_path / "run" / "checkpoints" / f"epoch-{row['epoch']}.pt", weights_only=True)
        model.load_state_dict(state["model"])
        model.eval()
        with torch.no_grad():
            predicted = model(images).argmax(1)
        assert row["train_eval_top1"] == pytest.approx(int((predicted == given).sum()) / 60)
        assert row["train_clean_top1"] == pytest.approx(int((predicted == clean).sum()) / 60)
        assert row["noise_memorised"] == pytest.approx(int((predicted == given)[flipped].sum()) / 24)
        assert row["noise_corrected"] == pytest.approx(int((predicted == clean)[flipped].sum()) / 24)
        assert row["gen_gap"] == pytest.approx(row["train_eval_top1"] - row["val_top1"])
    assert len({(r["noise_memorised"], r["noise_corrected"]) for r in _rows(tmp_path / "run")}) > 1  # they move


def test_the_training_pass_runs_only_when_its_metrics_are_wanted(tiny_fashion, tmp_path):
    base = dict(dataset="fashion-mnist", data_root=str(tiny_fashion), model="resnet8", epochs=1, batch_size=8,
                device="cpu")
    plain = _rows(train(TrainConfig(**base), tmp_path / "plain", progress_bar=False) and tmp_path / "plain")[0]
    assert not any(k in plain for k in INSTRUMENTS)
    clean = _rows(train(TrainConfig(**base, train_subset=20, val_size=10), tmp_path / "val", progress_bar=False)
                  and tmp_path / "val")[0]
    assert {k for k in INSTRUMENTS if k in clean} == {"train_eval_top1", "gen_gap"}  # no clean labels to count


def test_an_evaluation_loader_with_two_labels_per_image_serves_each_image_once():
    from tsla.data.in_memory import InMemoryLoader, TensorImages

    images = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    labels = torch.stack([torch.arange(10), torch.arange(10) % 3], 1)
    data = TensorImages(images, labels, [str(c) for c in range(10)])
    one = InMemoryLoader(data, 4, (0.0,), (1 / 255,), train=False)
    assert one.num_images == 10 and [len(y) for _, y in one.epoch(0, 0)] == [4, 4, 2]  # not 20 rows in 5 batches
    shards = [InMemoryLoader(data, 4, (0.0,), (1 / 255,), train=False, rank=r, world=2) for r in range(2)]
    served = [torch.cat([y for _, y in s.epoch(0, 0)]) for s in shards]
    assert [len(x) for x in served] == [5, 5] and torch.equal(torch.cat(served), labels)  # half each, every image once
