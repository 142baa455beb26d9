"""Stanford Dogs and CUB-200-2011 from their official archive layouts, with their official train/test splits.

Both loaders return ``(train, test)`` :class:`ImageListDataset` objects yielding ``(image_tensor, label)`` with
0-based labels. Everything that can be checked cheaply (root, list files, list contents, presence of every listed
image) is checked at load time, so a bad data root fails in one line before training starts, not hours into it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import UnidentifiedImageError
from torchvision import transforms as T
from torchvision.datasets.folder import default_loader

from tsla.errors import DataError

DOGS_URL = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
CUB_URL = "https://data.caltech.edu/records/65de6-vhk20"
DOGS_HOWTO = (
    f"Stanford Dogs: download images.tar and lists.tar from {DOGS_URL} and extract both into the data root "
    "(tar -xf images.tar -C ROOT && tar -xf lists.tar -C ROOT), giving ROOT/Images/ and ROOT/train_list.mat, "
    "ROOT/test_list.mat; then pass ROOT with --data-root."
)
CUB_HOWTO = (
    f"CUB-200-2011: download CUB_200_2011.tgz from {CUB_URL} and extract it into the data root "
    "(tar -xzf CUB_200_2011.tgz -C ROOT), giving ROOT/CUB_200_2011/images.txt and friends; "
    "then pass ROOT with --data-root."
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _dogs_fix(root: str) -> str:
    return f"download images.tar and lists.tar from {DOGS_URL} and extract both into {root} (or pass --data-root)"


def _cub_fix(root: str) -> str:
    return f"download CUB_200_2011.tgz from {CUB_URL} and extract it into {root} (or pass --data-root)"


class ImageListDataset(torch.utils.data.Dataset):
    """A fixed list of ``(absolute image path, 0-based label)`` samples.

    ``dataset[i]`` returns ``(transform(rgb_pil_image), label)``; without a transform the PIL image itself.
    Raises :class:`DataError` naming the file if an image cannot be decoded (corrupt or truncated file).
    """

    def __init__(
        self,
        samples: list[tuple[str, int]],
        classes: list[str],
        transform: Callable[[Any], Any] | None = None,
        fix_hint: str = "download the data set again",
    ) -> None:
        self.samples = samples
        self.classes = classes
        self.transform = transform
        self.fix_hint = fix_hint  # appended to decode errors so the user knows which archive to re-extract

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        try:
            image = default_loader(path)  # PIL open + convert("RGB"): grayscale/CMYK files become 3-channel
        except (OSError, SyntaxError, ValueError) as exc:  # PIL reports bad data as any of these
            # PIL's "cannot identify" message repeats the path as a file-object repr; say it plainly instead.
            reason = "not a recognizable image" if isinstance(exc, UnidentifiedImageError) else str(exc)
            reason = reason.replace("\n", " ")
            raise DataError(f"cannot read image {path} ({reason}); the file is corrupt or truncated, "
                            f"re-extract the archive: {self.fix_hint}") from exc
        if self.transform is not None:
            image = self.transform(image)
        return image, label


def train_transform(image_size: int) -> T.Compose:
    """Standard fine-grained training augmentation: random resized crop, horizontal flip, ImageNet normalization."""
    return T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_transform(image_size: int) -> T.Compose:
    """Deterministic evaluation transform: resize the short side to size*256/224, center crop, normalize."""
    return T.Compose([T.Resize(round(image_size * 256 / 224)), T.CenterCrop(image_size), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def _check_images_exist(name: str, samples: list[tuple[str, int]], fix: str) -> None:
    """Raise DataError naming the first listed image missing on disk and how many are missing."""
    missing = [p for p, _ in samples if not os.path.exists(p)]
    if missing:
        raise DataError(f"{name} is incomplete: {len(missing)} of {len(samples)} listed images are missing, "
                        f"first {missing[0]}; {fix}")


def _strip_prefix(folder: str, sep_pattern: str) -> str:
    """'n02085620-Chihuahua' -> 'Chihuahua', '001.Black_footed_Albatross' -> 'Black_footed_Albatross'."""
    parts = re.split(sep_pattern, folder, maxsplit=1)
    return parts[1] if len(parts) == 2 and parts[1] else folder


def _mat_entry_str(entry: Any) -> str:
    # loadmat gives each cell as a 1-element array (possibly nested); char arrays come back space-padded.
    while isinstance(entry, np.ndarray):
        entry = entry.ravel()[0] if entry.size else ""
    return str(entry).strip()


def _read_dogs_list(path: str, fix: str) -> list[tuple[str, int, int]]:
    """Read a Stanford Dogs ``*_list.mat`` into (relative path, 1-based label, 1-based entry number) triples."""
    import scipy.io  # imported here so that `import tsla` does not pay for scipy

    try:
        mat = scipy.io.loadmat(path)
        files, labels = np.asarray(mat["file_list"]).ravel(), np.asarray(mat["labels"]).ravel()
    except (OSError, ValueError, KeyError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise DataError(f"cannot read {path} ({type(exc).__name__}: {exc}); it should hold 'file_list' and "
                        f"'labels': {fix}") from exc
    if len(files) != len(labels):
        raise DataError(f"{path}: file_list has {len(files)} entries but labels has {len(labels)}; {fix}")
    out = []
    for i, (entry, raw) in enumerate(zip(files, labels), start=1):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = float("nan")
        if not np.isfinite(value) or value != round(value) or value < 1:
            raise DataError(f"{path}: entry {i} has label {raw!r}, expected an integer class id >= 1; {fix}")
        out.append((_mat_entry_str(entry), int(value), i))
    return out


def load_dogs(root: str | Path, image_size: int = 224) -> tuple[ImageListDataset, ImageListDataset]:
    """Stanford Dogs (official split) as ``(train, test)``; train gets :func:`train_transform`, test :func:`eval_transform`.

    ``train_list.mat``/``test_list.mat`` may sit in ROOT or ROOT/lists. K = the largest label; class k's name is its
    breed folder minus the WordNet id. Raises DataError (one line, with how to fix) if the root, a list file or any
    listed image is missing, a list is unreadable, a label is not an integer >= 1, or labels and folders disagree.
    """
    root_s = os.path.abspath(os.path.expanduser(str(root)))
    fix = _dogs_fix(root_s)
    if not os.path.isdir(root_s):
        raise DataError(f"Stanford Dogs not found: {root_s} does not exist; {fix}")
    images_dir = os.path.join(root_s, "Images")
    if not os.path.isdir(images_dir):
        raise DataError(f"Stanford Dogs not found: {images_dir} is missing; {fix}")
    list_paths: dict[str, str] = {}
    for split in ("train", "test"):  # lists.tar extracts into ROOT; some mirrors keep them in ROOT/lists
        candidates = [os.path.join(root_s, f"{split}_list.mat"), os.path.join(root_s, "lists", f"{split}_list.mat")]
        found = [c for c in candidates if os.path.exists(c)]
        if not found:
            raise DataError(f"Stanford Dogs not found: {candidates[0]} is missing (also looked in "
                            f"{os.path.dirname(candidates[1])}); {fix}")
        list_paths[split] = found[0]
    splits = {s: _read_dogs_list(p, fix) for s, p in list_paths.items()}
    # Labels and breed folders must correspond one-to-one; a mismatch means a list from another data set/version.
    folder_of: dict[int, str] = {}
    label_of: dict[str, int] = {}
    for split, rows in splits.items():
        for rel, label, i in rows:
            folder = rel.replace("\\", "/").split("/")[0]
            if folder_of.setdefault(label, folder) != folder or label_of.setdefault(folder, label) != label:
                raise DataError(f"{list_paths[split]}: entry {i} puts {rel} in class "
                                f"{label}, inconsistent with other entries; {fix}")
    if not folder_of:
        raise DataError(f"Stanford Dogs lists {list_paths['train']} and {list_paths['test']} are empty; {fix}")
    k = max(folder_of)
    classes = [_strip_prefix(folder_of[c], "-") if c in folder_of else f"class_{c}" for c in range(1, k + 1)]
    samples = {s: [(os.path.join(images_dir, rel), label - 1) for rel, label, _ in rows] for s, rows in splits.items()}
    _check_images_exist("Stanford Dogs", samples["train"] + samples["test"], fix)
    return (ImageListDataset(samples["train"], classes, train_transform(image_size), fix),
            ImageListDataset(samples["test"], list(classes), eval_transform(image_size), fix))


def _read_table(path: str, fix: str, int_value: bool) -> dict[int, tuple[Any, int]]:
    """Parse '<int id> <value>' lines into {id: (value, line number)}; blank lines are skipped."""
    table: dict[int, tuple[Any, int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            try:
                key = int(parts[0])
                value: Any = int(parts[1]) if int_value else parts[1].strip()
            except (ValueError, IndexError):
                raise DataError(f"{path}:{lineno}: cannot parse {line.strip()!r}, expected '<id> <"
                                f"{'number' if int_value else 'text'}>'; {fix}") from None
            table[key] = (value, lineno)
    return table


def load_cub(root: str | Path, image_size: int = 224) -> tuple[ImageListDataset, ImageListDataset]:
    """CUB-200-2011 (official split) as ``(train, test)``; train gets :func:`train_transform`, test :func:`eval_transform`.

    ROOT may be the extracted ``CUB_200_2011`` directory or its parent. K = the largest id in classes.txt if present,
    else the largest label; class names drop the 'NNN.' prefix. Raises DataError (one line, with how to fix) if the
    root, a metadata file or any listed image is missing, a line does not parse, a split flag is not 0/1, an image id
    lacks a split or label, or a label is outside [1, K].
    """
    root_s = os.path.abspath(os.path.expanduser(str(root)))
    fix = _cub_fix(root_s)
    if not os.path.isdir(root_s):
        raise DataError(f"CUB-200-2011 not found: {root_s} does not exist; {fix}")
    base = root_s if os.path.exists(os.path.join(root_s, "images.txt")) else os.path.join(root_s, "CUB_200_2011")
    for name in ("images.txt", "train_test_split.txt", "image_class_labels.txt", "images"):
        if not os.path.exists(os.path.join(base, name)):
            raise DataError(f"CUB-200-2011 not found: {os.path.join(base, name)} is missing; {fix}")
    images = _read_table(os.path.join(base, "images.txt"), fix, int_value=False)
    split_path, labels_path = os.path.join(base, "train_test_split.txt"), os.path.join(base, "image_class_labels.txt")
    split, labels = _read_table(split_path, fix, int_value=True), _read_table(labels_path, fix, int_value=True)
    classes_path = os.path.join(base, "classes.txt")
    named = ({c: v for c, (v, _) in _read_table(classes_path, fix, int_value=False).items()}
             if os.path.exists(classes_path) else {})
    if not images:
        raise DataError(f"{os.path.join(base, 'images.txt')} lists no images; {fix}")
    k = max(named) if named else max((v for v, _ in labels.values()), default=0)
    for image_id in images:
        for table, path in ((split, split_path), (labels, labels_path)):
            if image_id not in table:
                raise DataError(f"{path} has no line for image id {image_id} of images.txt; {fix}")
    for image_id, (flag, lineno) in split.items():
        if flag not in (0, 1):
            raise DataError(f"{split_path}:{lineno}: split flag {flag} for image {image_id} is not 0 or 1; {fix}")
    for image_id, (label, lineno) in labels.items():
        if not 1 <= label <= k:
            raise DataError(f"{labels_path}:{lineno}: class id {label} for image {image_id} is outside [1, {k}]; "
                            f"{fix}")
    folder_of: dict[int, str] = {}  # names for classes missing from classes.txt come from their image folder
    out: dict[int, list[tuple[str, int]]] = {0: [], 1: []}
    for image_id in sorted(images):  # image id order is the official order
        rel, label = images[image_id][0], labels[image_id][0]
        folder_of.setdefault(label, rel.replace("\\", "/").split("/")[0])
        out[split[image_id][0]].append((os.path.join(base, "images", rel), label - 1))
    classes = [_strip_prefix(named.get(c, folder_of.get(c, f"class_{c}")), r"\.") for c in range(1, k + 1)]
    _check_images_exist("CUB-200-2011", out[1] + out[0], fix)
    return (ImageListDataset(out[1], classes, train_transform(image_size), fix),
            ImageListDataset(out[0], list(classes), eval_transform(image_size), fix))
