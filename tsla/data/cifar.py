"""CIFAR-10 and CIFAR-100 through torchvision (``ROOT/cifar-10-batches-py`` / ``ROOT/cifar-100-python``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10, CIFAR100

from ..errors import DataError
from .in_memory import TensorImages

STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def load_cifar(name: str, root: str | Path, download: bool = False) -> tuple[TensorImages, TensorImages]:
    """Return (train, test) as uint8 (N, 3, 32, 32) images with int64 labels.

    Raises ``DataError`` when the data is missing (and ``download`` is off) or the download fails.
    """
    cls = CIFAR10 if name == "cifar10" else CIFAR100
    splits = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=download)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            raise DataError(
                f"{name} not found or corrupt under {root} (expected {cls.base_folder}/ with its original files): "
                f"pass --download, or --data-root pointing at the folder that holds {cls.base_folder}"
            ) from None
        except Exception as exc:  # network errors come in many types
            if not download:
                raise DataError(f"{name} under {root} is unreadable ({type(exc).__name__}): re-download it") from None
            raise DataError(f"{name} download into {root} failed ({type(exc).__name__}): check the network") from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
        splits.append(TensorImages(images, torch.tensor(ds.targets, dtype=torch.long), list(ds.classes)))
    return splits[0], splits[1]
