import gzip
import os
import struct
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

FASHION_ROOT = Path(os.environ.get("TSLA_DATA") or "/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    """The real Fashion-MNIST ($TSLA_DATA or Debian's folder). Missing, the tests that need it are skipped on a
    developer's machine and fail in CI, where scripts/setup.sh must have installed it."""
    if not any((FASHION_ROOT / name).is_file() for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")):
        message = f"Fashion-MNIST is not in {FASHION_ROOT} (scripts/setup.sh installs Debian's dataset-fashion-mnist)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return FASHION_ROOT


def write_idx(path: Path, array: torch.Tensor, compress: bool) -> None:
    """Write a uint8 IDX file by the format's definition: magic 0x0000 08 <ndim>, big-endian sizes, raw bytes."""
    header = struct.pack(">HBB", 0, 8, array.dim()) + b"".join(struct.pack(">I", s) for s in array.shape)
    payload = header + array.to(torch.uint8).numpy().tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


@pytest.fixture
def tiny_fashion(tmp_path) -> Path:
    """A fake Fashion-MNIST with 10 classes: 40 training and 20 test 28x28 images, uncompressed IDX files."""
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 40), ("t10k", 20)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.arange(n) % 10
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", images, compress=False)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", labels, compress=False)
    return tmp_path


def with_flags(base: list[str], extra: tuple[str, ...] | list[str]) -> list[str]:
    """``base`` with ``extra`` applied: an ``--flag value`` whose flag ``base`` gives replaces that value (tsla refuses
    a flag given twice), any other flag or value is appended."""
    out, extra, i = list(base), list(extra), 0
    while i < len(extra):
        flag = extra[i]
        has_value = i + 1 < len(extra) and not extra[i + 1].startswith("--")
        if has_value and flag in out and out.index(flag) + 1 < len(out):
            out[out.index(flag) + 1] = extra[i + 1]
        else:
            out += extra[i:i + 1 + has_value]
        i += 1 + has_value
    return out
