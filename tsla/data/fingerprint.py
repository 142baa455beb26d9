"""Fingerprints of the images and labels a run trains on and is evaluated on, stored in its checkpoint and checked
on resume and on branching.

A resume that finds other data (another --data-root, a re-extracted or edited data set) would otherwise draw its
class-balanced subset from what it finds and silently continue on different images. The fingerprint is taken over
the selected training set itself, after --train-subset, so two roots holding identical files agree and any change
to an image or a label of the selection disagrees. A second fingerprint covers the test images (after
--test-subset) and the validation images, so that a run's metrics.jsonl never mixes two test sets.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import DataError


def tensor_fingerprint(images: torch.Tensor, targets: torch.Tensor) -> str:
    """SHA-256 of an in-memory training set: its shape, every pixel byte and every label, in order."""
    images, targets = images.detach().cpu().contiguous(), targets.detach().cpu().to(torch.int64).contiguous()
    h = hashlib.sha256(f"images{tuple(images.shape)}{images.dtype}".encode())
    h.update(images.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(targets.numpy().tobytes())
    return "sha256:" + h.hexdigest()


def files_fingerprint(samples: Sequence[tuple[str, int]], root: str | Path) -> str:
    """SHA-256 of an image-file training set: each selected file's path relative to ``root``, its size in bytes and
    its label, in order. Reading every image's bytes would cost a full pass over the data set at each start; a
    replaced image almost always changes its size, and a different selection or labelling always changes the list."""
    h = hashlib.sha256(b"files")
    for path, label in samples:
        h.update(f"{os.path.relpath(path, root)}\0{os.path.getsize(path)}\0{int(label)}\n".encode())
    return "sha256:" + h.hexdigest()


def combined_fingerprint(**parts: str | None) -> str:
    """One SHA-256 over several named fingerprints (e.g. ``test=..., val=...``); a part that is None is left out."""
    h = hashlib.sha256(b"combined")
    for name, value in parts.items():
        if value is not None:
            h.update(f"{name}={value}\n".encode())
    return "sha256:" + h.hexdigest()


def check_fingerprint(state: Mapping[str, Any], fingerprint: str, source: str | Path, eval_fingerprint: str = "") -> None:
    """Refuse to continue a run (``state``: its checkpoint, resumed or branched from) on other training data, or on
    other test or validation images (``eval_fingerprint``).

    A checkpoint written before a fingerprint was stored (no ``data_fingerprint``, or no ``eval_fingerprint``: run
    folders of earlier versions) cannot be checked on that part and passes: a missing field is not a mismatch.
    Raises ``DataError`` saying how to get the run's data back.
    """
    before = state.get("data_fingerprint")
    if before is not None and before != fingerprint:
        raise DataError(
            f"the training images or labels found now differ from those {source} was trained on (data "
            f"fingerprint {fingerprint[7:19]}, not {str(before)[7:19]}): point --data-root at the run's own data, or "
            f"start a new run with a new --out"
        )
    before = state.get("eval_fingerprint")
    if before is not None and eval_fingerprint and before != eval_fingerprint:
        raise DataError(
            f"the test or validation images or labels found now differ from those {source} was evaluated on "
            f"(fingerprint {eval_fingerprint[7:19]}, not {str(before)[7:19]}), so its metrics would mix two test sets: "
            f"point --data-root at the run's own data, or start a new run with a new --out"
        )
