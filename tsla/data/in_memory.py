"""In-memory image data sets (Fashion-MNIST, CIFAR) kept as uint8 tensors and served a batch at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .augment import normalize, random_crop, random_flip


@dataclass
class TensorImages:
    """A whole data set in memory: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    targets: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return self.targets.numel()

    def subset(self, indices: torch.Tensor) -> "TensorImages":
        return TensorImages(self.images[indices], self.targets[indices], self.classes)


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, epoch, stream): data order and augmentation of an epoch
    are the same whether the run was interrupted and resumed or not."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 7 + stream)


class InMemoryLoader:
    """Serves (normalised float images, labels) batches from a :class:`TensorImages` on ``device``.

    Training loaders shuffle and augment (random crop with ``padding`` and horizontal flip) with a generator seeded
    by (seed, epoch); evaluation loaders keep the order and do not augment. A final training batch of a single image
    is dropped (BatchNorm cannot train on one image).
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
    ) -> None:
        self.device = torch.device(device)
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
        return self.targets.numel()

    def __len__(self) -> int:
        full, rest = divmod(self.num_images, self.batch_size)
        return full + (1 if rest > 1 or (rest == 1 and not self.train) else 0)

    def epoch(self, seed: int, epoch: int, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of one epoch; deterministic in (seed, epoch). ``start_batch`` skips the first batches (a
        resume in mid-epoch) and yields exactly the batches an uninterrupted epoch would have yielded after them."""
        n = self.num_images
        if self.train:
            gen = epoch_generator(seed, epoch)
            order = torch.randperm(n, generator=gen).to(self.device)
        else:
            gen, order = None, None
        for b in range(len(self)):
            start = b * self.batch_size
            stop = min(start + self.batch_size, n)
            if b < start_batch:
                if gen is not None:  # draw and discard the skipped batch's augmentation, to stay in step
                    if self.padding:  # the same draws as random_crop: two of (batch,)
                        torch.randint(0, 2 * self.padding + 1, (stop - start,), generator=gen)
                        torch.randint(0, 2 * self.padding + 1, (stop - start,), generator=gen)
                    if self.flip:
                        torch.rand(stop - start, generator=gen)
                continue
            if order is None:
                images, targets = self.images[start:stop], self.targets[start:stop]
            else:
                idx = order[start:stop]
                images, targets = self.images[idx], self.targets[idx]
                images = random_crop(images, self.padding, gen)
                if self.flip:
                    images = random_flip(images, gen)
            yield normalize(images, self.mean, self.std), targets
