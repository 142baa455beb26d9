"""The validation split: class-balanced training images that the training set does not use.

With ``--train-subset`` the validation images come from the training images outside the subset, so adding a
validation set never changes the training images. Without it, the validation images are removed from the training
set. Either way the draw depends only on (labels, sizes, --subset-seed): every method and seed of a study is
validated on the same images.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .subset import balanced_subset


def split_train_val(
    targets: torch.Tensor, train_subset: int | None, val_size: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(training indices, validation indices or None), both sorted and disjoint, into a training set with
    ``targets``. Raises ``ConfigError`` naming the flags when the two do not fit in the training set together."""
    n = targets.numel()
    train = balanced_subset(targets, train_subset, seed) if train_subset is not None else torch.arange(n)
    if val_size is None:
        return train, None
    rest = torch.ones(n, dtype=torch.bool)
    rest[train] = False
    pool = torch.nonzero(rest).flatten() if train_subset is not None else torch.arange(n)
    if train_subset is not None and val_size > pool.numel():
        raise ConfigError(f"--val-size {val_size} does not fit: --train-subset {train_subset} leaves only "
                          f"{pool.numel()} of the {n} training images outside it; lower --val-size or --train-subset")
    if train_subset is None and val_size > n - 2:  # at least 2 images must stay for one SGD step
        raise ConfigError(f"--val-size {val_size} does not fit: the training set has {n} images and at least 2 must "
                          f"stay for training; pass --val-size {max(n - 2, 1)} or less")
    # the seed is shifted so the validation draw is not the training subset's own draw
    val = pool[balanced_subset(targets[pool], val_size, seed + 7_919, "--val-size")]
    if train_subset is None:
        keep = torch.ones(n, dtype=torch.bool)
        keep[val] = False
        train = torch.nonzero(keep).flatten()
    return train, val.sort().values
