"""Data sets and batch sources: ``build_data(cfg, device)`` gives everything the engine needs.

A batch source has ``len()`` (batches per epoch), ``num_images`` and ``epoch(seed, epoch)``, an iterator of
(float images on the device, int64 labels on the device) that depends only on (seed, epoch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import torch

from ..config import TrainConfig
from ..errors import ConfigError, DataError
from .fashion_mnist import DEBIAN_ROOT
from .augment import normalize
from .fingerprint import combined_fingerprint, files_fingerprint, tensor_fingerprint
from .in_memory import InMemoryLoader, TensorImages, batches_per_epoch, epoch_generator
from .label_noise import label_noise, validation_noise
from .subset import balanced_subset
from .validation import split_train_val


class BatchSource(Protocol):
    num_images: int

    def __len__(self) -> int: ...

    def epoch(self, seed: int, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass
class DataBundle:
    train: BatchSource
    test: BatchSource
    num_classes: int
    in_channels: int
    train_targets: torch.Tensor
    classes: list[str]
    diagnostic_examples: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]
    """``(n, seed) -> (images, labels)``: a fixed, class-balanced set of n training images on the device,
    normalised like the training data but not augmented (for the theory diagnostics), with their clean labels."""
    val: BatchSource | None = None
    """The validation split (``--val-size``), evaluated like the test set; None without one."""
    train_clean_targets: torch.Tensor | None = None
    """The training labels before ``--label-noise`` (None: no noise, ``train_targets`` are clean)."""
    train_eval: BatchSource | None = None
    """The training images in order, not augmented, evaluated like the test set, with (N, 2) labels: column 0 the
    given (possibly noisy) label, column 1 the clean one; for the memorisation instruments
    (:mod:`tsla.training.memorisation`). Present with ``--label-noise`` or ``--val-size`` (in-memory data sets)."""
    val_second: str | None = None
    """With simulated label noise and a validation split: the prefix of the validation metrics on the split's other
    labelling (``val_clean_`` when ``val_*`` uses the noisy labels, ``val_noisy_`` when it uses the clean ones);
    ``val`` then yields (N, 2) labels, column 0 the one ``val_*`` reads. None: one labelling."""
    fingerprint: str = ""
    """SHA-256 of the training images and labels trained on (:mod:`tsla.data.fingerprint`), checked on resume."""
    eval_fingerprint: str = ""
    """SHA-256 of the test images and labels (and the validation split's), checked on resume and branching."""


def data_root(cfg: TrainConfig) -> Path:
    """--data-root, else $TSLA_DATA, else the data set's standard place (Debian's folder for Fashion-MNIST,
    ./data otherwise)."""
    if cfg.data_root:
        return Path(cfg.data_root).expanduser()
    if os.environ.get("TSLA_DATA"):
        return Path(os.environ["TSLA_DATA"]).expanduser()
    return Path(DEBIAN_ROOT) if cfg.dataset == "fashion-mnist" else Path("data")


class FolderLoader:
    """Batches from an image-file data set through ``torch.utils.data.DataLoader`` (decoding needs workers).

    The order and the workers' random seeds come from generators seeded by (seed, epoch), so an epoch is
    reproducible on its own.
    """

    def __init__(self, dataset, batch_size: int, train: bool, workers: int, device: torch.device,
                 rank: int = 0, world: int = 1) -> None:
        if not train and world > 1:  # evaluation: this rank's contiguous shard
            n = len(dataset)
            dataset = torch.utils.data.Subset(dataset, range(n * rank // world, n * (rank + 1) // world))
        self.dataset, self.batch_size, self.train = dataset, batch_size, train
        self.workers, self.device, self.rank, self.world = workers, device, rank, world
        self.num_images = len(dataset)

    def __len__(self) -> int:
        return batches_per_epoch(self.num_images, self.batch_size, self.train, self.world)

    def epoch(self, seed: int, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of one epoch. With ``start_batch`` (a resume in mid-epoch) the same images follow in the
        same order, but their random augmentation differs from an uninterrupted epoch's (the workers' streams
        restart): exact mid-epoch resume holds for the in-memory data sets only."""
        order = torch.randperm(self.num_images, generator=epoch_generator(seed, epoch)).tolist() if self.train else None
        local_batch = self.batch_size
        if order is not None:
            mine = []  # this rank's slice of every global batch, from start_batch on
            for start in range(start_batch * self.batch_size, len(self) * self.batch_size, self.batch_size):
                m = min(self.batch_size, self.num_images - start)
                mine += order[start + m * self.rank // self.world : start + m * (self.rank + 1) // self.world]
            order, local_batch = mine, self.batch_size // self.world
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=local_batch,
            sampler=order,
            num_workers=self.workers,
            generator=epoch_generator(seed, epoch, stream=1),
            pin_memory=self.device.type == "cuda",
            drop_last=False,
        )
        for images, targets in loader:
            yield images.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)


def _check_labels(data: TensorImages, name: str) -> None:
    """Labels must index the classes (the loss skips this check per step on a GPU)."""
    k = len(data.classes)
    bad = (data.targets < 0) | (data.targets >= k)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0])
        raise DataError(f"{name}: label {int(data.targets[i])} of image {i} is outside [0, {k}): the data set is corrupt")


def _in_memory(cfg: TrainConfig, device: torch.device, rank: int, world: int) -> DataBundle:
    root = data_root(cfg)
    if cfg.dataset == "fashion-mnist":
        from .fashion_mnist import MEAN, STD, load_fashion_mnist

        train, test = load_fashion_mnist(root, cfg.download)
        padding = 2  # 28x28 images: a 2-pixel shift is ~7%, as 4 pixels are for CIFAR's 32x32
        mean, std = MEAN, STD
    else:
        from .cifar import STATS, load_cifar

        train, test = load_cifar(cfg.dataset, root, cfg.download)
        padding = 4
        mean, std = STATS[cfg.dataset]
    _check_labels(train, f"{cfg.dataset} training set")
    _check_labels(test, f"{cfg.dataset} test set")
    train_idx, val_idx = split_train_val(train.targets, cfg.train_subset, cfg.val_size, cfg.subset_seed)
    val = train.subset(val_idx) if val_idx is not None else None
    if cfg.train_subset is not None or val_idx is not None:
        train = train.subset(train_idx)
    if cfg.test_subset is not None:
        test = test.subset(balanced_subset(test.targets, cfg.test_subset, cfg.subset_seed, "--test-subset"))
    clean = train  # the diagnostics measure the clean objective
    if cfg.label_noise:
        noisy = label_noise(train.targets, cfg.label_noise, cfg.label_noise_type, cfg.dataset, len(train.classes),
                            cfg.label_noise_seed)
        train = TensorImages(train.images, noisy, train.classes)

    val_eval, val_second = val, None
    if val is not None and cfg.label_noise:  # the validation labels with and without the training labels' noise
        noisy_val = validation_noise(val.targets, cfg, len(val.classes))
        same = cfg.val_label_noise == "same"
        columns = (noisy_val, val.targets) if same else (val.targets, noisy_val)
        val_eval = TensorImages(val.images, torch.stack(columns, 1), val.classes)
        val_second = "val_clean_" if same else "val_noisy_"

    def diagnostic_examples(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = balanced_subset(clean.targets, n, seed, "--diagnose-examples")
        stats = torch.tensor(mean), torch.tensor(std)
        return normalize(clean.images[idx], *stats).to(device), clean.targets[idx].to(device)

    def evaluation(data: TensorImages) -> InMemoryLoader:
        return InMemoryLoader(data, cfg.eval_batch_size, mean, std, train=False, device=device, rank=rank, world=world)

    return DataBundle(
        train=InMemoryLoader(train, cfg.batch_size, mean, std, train=True, padding=padding if cfg.augment else 0,
                             flip=cfg.augment, device=device, rank=rank, world=world),
        test=evaluation(test),
        num_classes=len(train.classes),
        in_channels=train.images.shape[1],
        train_targets=train.targets,
        classes=train.classes,
        diagnostic_examples=diagnostic_examples,
        val=evaluation(val_eval) if val is not None else None,
        val_second=val_second,
        train_clean_targets=clean.targets if cfg.label_noise else None,
        train_eval=evaluation(TensorImages(train.images, torch.stack([train.targets, clean.targets], 1),
                                           train.classes)) if cfg.label_noise or val is not None else None,
        fingerprint=tensor_fingerprint(train.images, train.targets),
        eval_fingerprint=combined_fingerprint(test=tensor_fingerprint(test.images, test.targets),
                                              val=tensor_fingerprint(val.images, val.targets) if val is not None else None),
    )


def _folders(cfg: TrainConfig, device: torch.device, rank: int, world: int) -> DataBundle:
    from .folders import ImageListDataset, eval_transform, load_cub, load_dogs

    train, test = (load_dogs if cfg.dataset == "dogs" else load_cub)(data_root(cfg), cfg.image_size)
    targets = torch.as_tensor(train.targets, dtype=torch.long)
    if cfg.train_subset is not None:
        train = torch.utils.data.Subset(train, balanced_subset(targets, cfg.train_subset, cfg.subset_seed).tolist())
        targets = targets[torch.as_tensor(train.indices)]
    if cfg.test_subset is not None:
        test_targets = torch.as_tensor(test.targets, dtype=torch.long)
        idx = balanced_subset(test_targets, cfg.test_subset, cfg.subset_seed, "--test-subset")
        test = torch.utils.data.Subset(test, idx.tolist())
    base = train.dataset if isinstance(train, torch.utils.data.Subset) else train
    classes = base.classes

    def diagnostic_examples(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = balanced_subset(targets, n, seed, "--diagnose-examples").tolist()
        if isinstance(train, torch.utils.data.Subset):
            idx = [train.indices[i] for i in idx]
        plain = ImageListDataset([base.samples[i] for i in idx], base.classes, eval_transform(cfg.image_size))
        images, labels = zip(*(plain[i] for i in range(len(plain))))
        return torch.stack(images).to(device), torch.tensor(labels, dtype=torch.long).to(device)

    return DataBundle(
        train=FolderLoader(train, cfg.batch_size, True, cfg.workers, device, rank, world),
        test=FolderLoader(test, cfg.eval_batch_size, False, cfg.workers, device, rank, world),
        num_classes=len(classes),
        in_channels=3,
        train_targets=targets,
        classes=list(classes),
        diagnostic_examples=diagnostic_examples,
        fingerprint=files_fingerprint([base.samples[i] for i in (
            train.indices if isinstance(train, torch.utils.data.Subset) else range(len(base)))], data_root(cfg)),
        eval_fingerprint=combined_fingerprint(test=files_fingerprint(_samples(test), data_root(cfg))),
    )


def _samples(dataset: Any) -> list[tuple[str, int]]:
    """The (path, label) list of an image-folder data set, or of the part a ``Subset`` selects."""
    if isinstance(dataset, torch.utils.data.Subset):
        return [dataset.dataset.samples[i] for i in dataset.indices]
    return list(dataset.samples)


def diagnostic_set(cfg: TrainConfig, data: DataBundle, examples: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed training images the theory diagnostics use: ``examples`` (default ``cfg.diagnose_examples``, at
    most the training set), drawn by (``cfg.subset_seed``, ``cfg.seed``) so that training and ``tsla diagnose`` see
    the same, and each seed its own draw (the spread over seeds then includes the sampling error of the set)."""
    n = min(examples or cfg.diagnose_examples, len(data.train_targets))
    return data.diagnostic_examples(n, cfg.subset_seed + 1 + 1_000_003 * cfg.seed)


def build_data(cfg: TrainConfig, device: torch.device, rank: int = 0, world: int = 1) -> DataBundle:
    """Load the data set ``cfg`` names and wrap it in batch sources on ``device`` (for ``rank`` of ``world``
    distributed processes: its slices of the training batches and its shard of the test set).

    Raises ``DataError`` (one line, with how to get the data) when it is missing.
    """
    data = (_folders if cfg.dataset in ("dogs", "cub") else _in_memory)(cfg, device, rank, world)
    _check_trainable(data, cfg)
    return data


def _check_trainable(data: DataBundle, cfg: TrainConfig) -> None:
    """Refuse a training set that cannot train: fewer images than classes (some class never seen), or too few for
    one SGD step (a last batch of a single image is dropped, as BatchNorm cannot train on it)."""
    n, k = len(data.train_targets), data.num_classes
    if n < k and cfg.train_subset is None:  # the set itself is too small, or --val-size took the rest
        taken = f" once --val-size {cfg.val_size} is held out" if cfg.val_size else ""
        raise ConfigError(f"the training set has {n} images{taken}, fewer than the {k} classes of {cfg.dataset}: "
                          f"every class needs an image; " + ("lower --val-size" if cfg.val_size else
                                                                "use a data set with an image of every class"))
    if n < k:
        raise ConfigError(f"--train-subset {n} is smaller than the {k} classes of {cfg.dataset}: every class needs an "
                          f"image; pass --train-subset {k} or more")
    if len(data.train) == 0:
        raise ConfigError(f"the {n} training images make no SGD step with --batch-size {cfg.batch_size} (a batch "
                          f"needs at least 2 images): use more images or a smaller --batch-size")


__all__ = ["BatchSource", "DataBundle", "FolderLoader", "InMemoryLoader", "TensorImages", "build_data", "data_root",
           "diagnostic_set"]
