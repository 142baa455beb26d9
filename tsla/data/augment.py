"""Batch augmentation on uint8 image tensors: random crop with zero padding and horizontal flip.

Everything works on a whole batch at once, on the device the batch lives on, with no per-image Python work. The
random draws come from an explicit CPU generator, so a batch's augmentation depends only on that generator's seed,
whatever the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def draw_augmentation(
    n: int, padding: int, flip: bool, generator: torch.Generator
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The random draws for a batch of ``n`` images, in a fixed order: crop offsets dy, dx in [0, 2*padding] (when
    padding > 0), then flip flags (when ``flip``). Drawing them apart from applying them lets a distributed rank
    apply only its slice of a global batch, and a resumed epoch skip batches, with the generator staying in step."""
    dy = dx = mask = None
    if padding:
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
    return dy, dx, mask


def crop(images: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Zero-pad each side by ``padding`` pixels and cut, from image i, the window at offset (dy[i], dx[i])."""
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dy, dx = dy.to(images.device), dx.to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    chan = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose ``mask`` entry is true."""
    return torch.where(mask.to(images.device)[:, None, None, None], images.flip(-1), images)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each side by ``padding`` pixels and cut a random crop of the original size from every image.

    ``images`` is (N, C, H, W); every offset in [0, 2*padding] is equally likely, independently per image and axis.
    """
    if padding == 0:
        return images
    dy, dx, _ = draw_augmentation(images.shape[0], padding, False, generator)
    return crop(images, padding, dy, dx)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    _, _, mask = draw_augmentation(images.shape[0], 0, True, generator)
    return flip(images, mask)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 ((x / 255) - mean) / std, per channel."""
    return (images.float().div_(255.0) - mean[:, None, None]) / std[:, None, None]
