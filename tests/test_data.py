"""Fashion-MNIST loading, subsets and batch augmentation."""

import pytest
import torch

from tsla.data.augment import normalize, random_crop, random_flip
from tsla.data.fashion_mnist import load_fashion_mnist
from tsla.data.in_memory import InMemoryLoader, TensorImages
from tsla.data.subset import balanced_subset
from tsla.errors import ConfigError, DataError

from .conftest import write_idx


def test_real_debian_files(fashion_root):
    train, test = load_fashion_mnist(fashion_root)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class
    assert torch.bincount(train.targets).tolist() == [6000] * 10
    assert torch.bincount(test.targets).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and len(train.classes) == 10
    # the published mean pixel of the training set is 0.2860 (x/255)
    assert abs(train.images.float().mean().item() / 255 - 0.2860) < 5e-4


def test_uncompressed_and_torchvision_layouts(tmp_path):
    images = torch.arange(3 * 28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8).view(3, 28, 28)
    labels = torch.tensor([7, 0, 3])
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        write_idx(raw / f"{split}-images-idx3-ubyte", images, compress=split == "train")
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels, compress=False)
    train, test = load_fashion_mnist(tmp_path)
    assert torch.equal(train.images[:, 0], images) and torch.equal(test.images[:, 0], images)
    assert train.targets.tolist() == [7, 0, 3]


def test_missing_path_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as info:
        load_fashion_mnist(tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "dataset-fashion-mnist" in message and "--download" in message
    assert "\n" not in message


def test_balanced_subset_counts_and_seed():
    targets = torch.arange(1000) % 10
    idx = balanced_subset(targets, 95, seed=3)
    counts = torch.bincount(targets[idx], minlength=10)
    assert idx.numel() == 95 and len(set(idx.tolist())) == 95
    assert sorted(counts.tolist()) == [9] * 5 + [10] * 5
    assert torch.equal(idx, balanced_subset(targets, 95, seed=3))
    assert not torch.equal(idx, balanced_subset(targets, 95, seed=4))
    with pytest.raises(ConfigError, match="larger than the data set"):
        balanced_subset(targets, 1001, seed=0)


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    images = torch.randint(1, 256, (16, 2, 6, 5), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    out = random_crop(images, 2, gen)
    # redraw the same offsets and cut each window by hand
    gen = torch.Generator().manual_seed(0)
    dy = torch.randint(0, 5, (16,), generator=gen)
    dx = torch.randint(0, 5, (16,), generator=gen)
    padded = torch.zeros(16, 2, 10, 9, dtype=torch.uint8)
    padded[:, :, 2:8, 2:7] = images
    for i in range(16):
        assert torch.equal(out[i], padded[i, :, dy[i] : dy[i] + 6, dx[i] : dx[i] + 5])


def test_flip_mirrors_about_half_and_normalize_formula():
    images = torch.randint(0, 256, (2000, 1, 4, 4), dtype=torch.uint8)
    out = random_flip(images, torch.Generator().manual_seed(1))
    flipped = (out == images.flip(-1)).flatten(1).all(1) & ~(out == images).flatten(1).all(1)
    kept = (out == images).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert 900 < int(flipped.sum()) < 1100
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    y = normalize(x, torch.tensor([0.5]), torch.tensor([0.25]))
    assert torch.allclose(y, torch.tensor([[[[-2.0, 2.0]]]]))


def test_loader_epochs_are_deterministic_and_cover_the_data():
    data = TensorImages(torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8), torch.arange(50), ["c"] * 50)
    loader = InMemoryLoader(data, 16, (0.5,), (0.5,), train=True, padding=1, flip=True)
    first = [(x.clone(), y.clone()) for x, y in loader.epoch(seed=0, epoch=3)]
    again = list(loader.epoch(seed=0, epoch=3))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    seen = torch.cat([y for _, y in first])
    assert sorted(seen.tolist()) == list(range(50)) and len(loader) == 4
    other = torch.cat([y for _, y in loader.epoch(seed=0, epoch=4)])
    assert not torch.equal(seen, other)
    # starting at batch 2 gives exactly the batches an uninterrupted epoch gives from batch 2 on
    tail = list(loader.epoch(seed=0, epoch=3, start_batch=2))
    assert len(tail) == 2 and all(torch.equal(a[0], b[0]) for a, b in zip(first[2:], tail))
    # a last training batch of one image is dropped (BatchNorm cannot train on it); evaluation keeps everything
    odd = TensorImages(data.images[:33], data.targets[:33], data.classes)
    assert len(InMemoryLoader(odd, 16, (0.5,), (0.5,), train=True)) == 2
    assert sum(y.numel() for _, y in InMemoryLoader(odd, 16, (0.5,), (0.5,), train=False).epoch(0, 0)) == 33
