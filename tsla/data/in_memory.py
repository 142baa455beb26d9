"""In-memory image data sets (Fashion-MNIST, CIFAR) kept as uint8 tensors and served a batch at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .augment import crop, draw_augmentation, flip as flip_images, normalize


@dataclass
class TensorImages:
    """A whole data set in memory: uint8 images (N, C, H, W) and int64 labels (N,), or (N, M) with M labels per
    image (the memorisation instruments' given and clean labels)."""

    images: torch.Tensor
    targets: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return self.targets.shape[0]

    def subset(self, indices: torch.Tensor) -> "TensorImages":
        return TensorImages(self.images[indices], self.targets[indices], self.classes)


def batches_per_epoch(images: int, batch_size: int, train: bool, world: int = 1) -> int:
    """Full batches, plus a short last one where it can be used: in training it needs an image per rank, and two
    in all for BatchNorm; evaluation keeps every image."""
    full, rest = divmod(images, batch_size)
    return full + (1 if rest >= max(2, world) or (rest and not train) else 0)


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, epoch, stream): data order and augmentation of an epoch
    are the same whether the run was interrupted and resumed or not."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream)


class InMemoryLoader:
    """Serves (normalised float images, labels) batches from a :class:`TensorImages` on ``device``.

    Training loaders shuffle and augment (random crop with ``padding`` and horizontal flip) with a generator seeded
    by (seed, epoch); evaluation loaders keep the order and do not augment. A final training batch of a single image
    is dropped (BatchNorm cannot train on one image).

    Distributed (``world`` > 1): ``batch_size`` is the global batch. Every rank draws the same order and the same
    augmentation for each global batch and keeps its own contiguous slice of it, so the ranks together see exactly
    what one process would. An evaluation loader gives each rank a contiguous shard of the data, evaluated once.
    """

    def __init__(
        self,
        data: TensorImages,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool,
        padding: int = 0,
        flip: bool = False,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.device = torch.device(device)
        self.rank, self.world = rank, world
        if not train and world > 1:  # evaluation: this rank's shard only
            n = data.targets.shape[0]
            data = TensorImages(data.images[n * rank // world : n * (rank + 1) // world],
                                data.targets[n * rank // world : n * (rank + 1) // world], data.classes)
        self.images = data.images.to(self.device)
        self.targets = data.targets.to(self.device)
        self.batch_size = batch_size
        self.mean = torch.tensor(mean, device=self.device)
        self.std = torch.tensor(std, device=self.device)
        self.train = train
        self.padding = padding
        self.flip = flip

    @property
    def num_images(self) -> int:
        """Images in one epoch, all ranks together (training) or in this rank's shard (evaluation)."""
        return self.targets.shape[0]

    def __len__(self) -> int:
        return batches_per_epoch(self.num_images, self.batch_size, self.train, self.world)

    def epoch(self, seed: int, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of one epoch (this rank's slices of them); deterministic in (seed, epoch). ``start_batch``
        skips the first batches (a resume in mid-epoch) and yields exactly what an uninterrupted epoch would have
        yielded after them."""
        n = self.num_images
        if self.train:
            gen = epoch_generator(seed, epoch)
            order = torch.randperm(n, generator=gen).to(self.device)
        else:
            gen, order = None, None
        for b in range(len(self)):
            start = b * self.batch_size
            stop = min(start + self.batch_size, n)
            if order is None:
                if b >= start_batch:
                    yield normalize(self.images[start:stop], self.mean, self.std), self.targets[start:stop]
                continue
            dy, dx, mask = draw_augmentation(stop - start, self.padding, self.flip, gen)
            if b < start_batch:
                continue  # the draws above keep the generator in step with an uninterrupted epoch
            m = stop - start
            lo, hi = m * self.rank // self.world, m * (self.rank + 1) // self.world
            idx = order[start + lo : start + hi]
            images = self.images[idx]
            if dy is not None:
                images = crop(images, self.padding, dy[lo:hi], dx[lo:hi])
            if mask is not None:
                images = flip_images(images, mask[lo:hi])
            yield normalize(images, self.mean, self.std), self.targets[idx]
