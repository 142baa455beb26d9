"""Seeded, class-balanced subsets."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def balanced_subset(targets: torch.Tensor, size: int, seed: int, flag: str = "--train-subset") -> torch.Tensor:
    """Indices (sorted) of ``size`` examples with every class as equally represented as possible.

    Each class contributes ``size // K`` examples, and ``size % K`` classes (chosen by the seed) one more; within a
    class the examples are drawn uniformly at random by the seed. A class too small to give its share gives all it
    has and the rest is drawn from the remaining examples. Raises ``ConfigError`` if ``size`` exceeds the data set.
    """
    targets = targets.cpu().long()
    n = targets.numel()
    if size > n:
        raise ConfigError(f"{flag} {size} is larger than the data set ({n} images): pass at most {n}")
    gen = torch.Generator().manual_seed(10_007 * seed + 17)
    classes = torch.unique(targets)
    k = classes.numel()
    quota = torch.full((k,), size // k, dtype=torch.long)
    quota[torch.randperm(k, generator=gen)[: size % k]] += 1
    chosen, leftover = [], []
    for i, c in enumerate(classes.tolist()):
        members = torch.nonzero(targets == c).flatten()
        members = members[torch.randperm(members.numel(), generator=gen)]
        chosen.append(members[: quota[i]])
        leftover.append(members[quota[i] :])
    picked = torch.cat(chosen)
    short = size - picked.numel()
    if short > 0:
        rest = torch.cat(leftover)
        picked = torch.cat([picked, rest[torch.randperm(rest.numel(), generator=gen)[:short]]])
    return picked.sort().values
