"""Fashion-MNIST: 60,000 training and 10,000 test images, 28x28 grey, 10 classes.

The files are the four IDX files of the original release, gzip-compressed or not. They are looked for in the data
root itself (Debian's ``dataset-fashion-mnist`` installs them flat in /usr/share/datasets/fashion-mnist), in
``ROOT/FashionMNIST/raw`` (torchvision's layout, what ``--download`` produces) and in ``ROOT/fashion-mnist``.
Debian recompresses the files, so torchvision's checksums do not match them: we parse them with torchvision's IDX
reader directly instead of going through ``torchvision.datasets.FashionMNIST``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST
from torchvision.datasets.mnist import read_image_file, read_label_file

from ..errors import DataError
from .in_memory import TensorImages

DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"
MEAN, STD = (0.2860,), (0.3530,)
HOWTO = (
    "install Debian's package (apt-get install dataset-fashion-mnist), point --data-root or $TSLA_DATA at a folder "
    "holding the four IDX files, or add --download"
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(root: Path, stem: str) -> Path | None:
    for folder in (root, root / "FashionMNIST" / "raw", root / "fashion-mnist"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _read(path: Path, reader) -> torch.Tensor:
    """Parse an IDX file (gunzipped into a temporary file first when compressed) with torchvision's reader."""
    try:
        if path.suffix != ".gz":
            return reader(str(path))
        with tempfile.TemporaryDirectory() as tmp:
            plain = os.path.join(tmp, path.stem)
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            return reader(plain)
    except AssertionError:  # torchvision's reader asserts the magic number and the sizes, without a message
        raise DataError(f"Fashion-MNIST file {path} is not an IDX file of the expected kind (wrong magic number or "
                        f"sizes): reinstall or re-download it") from None
    except (OSError, EOFError, RuntimeError, TypeError, ValueError, zlib.error) as exc:
        raise DataError(f"Fashion-MNIST file {path} is unreadable ({exc or type(exc).__name__}): reinstall or "
                        f"re-download it") from None


def load_fashion_mnist(root: str | Path, download: bool = False) -> tuple[TensorImages, TensorImages]:
    """Return (train, test) as uint8 (N, 1, 28, 28) images with int64 labels.

    Raises ``DataError`` with one line saying how to get the data when the files are missing or unreadable.
    """
    root = Path(root)
    if download and any(_find(root, stem) is None for pair in _FILES.values() for stem in pair):
        try:
            for train in (True, False):
                FashionMNIST(str(root), train=train, download=True)
        except Exception as exc:  # network errors come in many types; all mean the same to the user
            raise DataError(f"Fashion-MNIST download into {root} failed ({type(exc).__name__}): {HOWTO}") from None
    splits = []
    for split, (image_stem, label_stem) in _FILES.items():
        image_path, label_path = _find(root, image_stem), _find(root, label_stem)
        if image_path is None or label_path is None:
            missing = image_stem if image_path is None else label_stem
            raise DataError(f"Fashion-MNIST not found: no {missing}[.gz] under {root}; {HOWTO}")
        images = _read(image_path, read_image_file)
        labels = _read(label_path, read_label_file)
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"Fashion-MNIST {split} files disagree: {images.shape[0]} images, {labels.shape[0]} labels")
        if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
            size = "x".join(map(str, images.shape[1:]))
            raise DataError(f"Fashion-MNIST file {image_path} holds {size} images, not 28x28: it is not Fashion-MNIST's; "
                            f"reinstall or re-download it")
        splits.append(TensorImages(images.unsqueeze(1).contiguous(), labels.long(), list(FashionMNIST.classes)))
    return splits[0], splits[1]
