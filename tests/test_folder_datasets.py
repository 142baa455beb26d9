"""Stanford Dogs / CUB-200-2011 loaders on tiny fake trees built in the official archive layouts.

Expectations are written out by hand (which file is train or test, which label, which class names), never
derived from the loader's own output.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import scipy.io as scipy_io

from tsla.data.folders import (
    ImageListDataset,
    eval_transform,
    load_cub,
    load_dogs,
    train_transform,
)
from tsla.errors import DataError

# --- Stanford Dogs --------------------------------------------------------------------------------------------

DOG_FOLDERS = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02086240-Shih-Tzu"]  # labels 1, 2, 3
DOG_TRAIN = [  # (relative path under Images/, 1-based label)
    ("n02085620-Chihuahua/n02085620_1.jpg", 1),
    ("n02085620-Chihuahua/n02085620_2.jpg", 1),
    ("n02085782-Japanese_spaniel/n02085782_1.jpg", 2),
    ("n02086240-Shih-Tzu/n02086240_1.jpg", 3),
    ("n02086240-Shih-Tzu/n02086240_2.jpg", 3),
]
DOG_TEST = [
    ("n02085620-Chihuahua/n02085620_3.jpg", 1),
    ("n02085782-Japanese_spaniel/n02085782_2.jpg", 2),
    ("n02086240-Shih-Tzu/n02086240_3.jpg", 3),
]
# Expected (file name, 0-based label) pairs, written independently of the lists above.
DOG_TRAIN_EXPECTED = {("n02085620_1.jpg", 0), ("n02085620_2.jpg", 0), ("n02085782_1.jpg", 1),
                      ("n02086240_1.jpg", 2), ("n02086240_2.jpg", 2)}
DOG_TEST_EXPECTED = {("n02085620_3.jpg", 0), ("n02085782_2.jpg", 1), ("n02086240_3.jpg", 2)}
DOG_CLASSES = ["Chihuahua", "Japanese_spaniel", "Shih-Tzu"]  # text after the FIRST '-' only


def _jpeg(path: Path, color: tuple[int, int, int] = (200, 100, 50)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), color).save(path, "JPEG")


def _write_mat(path: Path, rows: list[tuple[str, int]], nested: bool = True) -> None:
    """Write a list .mat. nested=True is the official structure: file_list a (N,1) cell of 1-element char arrays,
    labels (N,1) uint8. nested=False is the plain form: a space-padded char matrix and a float label row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if nested:
        files: np.ndarray = np.empty((len(rows), 1), dtype=object)
        for i, (rel, _) in enumerate(rows):
            files[i, 0] = np.array([rel])
        labels = np.array([[lab] for _, lab in rows], dtype=np.uint8)
    else:
        files = np.array([rel for rel, _ in rows])
        labels = np.array([[float(lab) for _, lab in rows]])
    scipy_io.savemat(str(path), {"file_list": files, "labels": labels})


def make_dogs(root: Path, lists_subdir: bool = False, nested: bool = True,
              train: list[tuple[str, int]] | None = None) -> Path:
    for rel, _ in DOG_TRAIN + DOG_TEST:
        _jpeg(root / "Images" / rel)
    lists = root / "lists" if lists_subdir else root
    _write_mat(lists / "train_list.mat", DOG_TRAIN if train is None else train, nested)
    _write_mat(lists / "test_list.mat", DOG_TEST, nested)
    return root


def _pairs(ds: ImageListDataset) -> set[tuple[str, int]]:
    return {(os.path.basename(p), label) for p, label in ds.samples}


def test_mat_roundtrip_has_official_nested_structure(tmp_path: Path) -> None:
    # Guards the fixture: loadmat must give back the nested cell form the real lists have.
    _write_mat(tmp_path / "x.mat", DOG_TRAIN)
    m = scipy_io.loadmat(str(tmp_path / "x.mat"))
    assert m["file_list"].shape == (5, 1) and m["file_list"].dtype == object
    assert isinstance(m["file_list"][0, 0], np.ndarray)
    assert m["labels"].shape == (5, 1)
    _write_mat(tmp_path / "y.mat", DOG_TRAIN, nested=False)
    plain = scipy_io.loadmat(str(tmp_path / "y.mat"))["file_list"]
    assert plain.dtype.kind == "U" and plain[0] != DOG_TRAIN[0][0]  # shorter paths come back space-padded


@pytest.mark.parametrize("lists_subdir", [False, True])
@pytest.mark.parametrize("nested", [True, False])
def test_dogs_official_split(tmp_path: Path, lists_subdir: bool, nested: bool) -> None:
    train, test = load_dogs(make_dogs(tmp_path, lists_subdir, nested), image_size=32)
    assert (len(train), len(test)) == (5, 3)
    assert _pairs(train) == DOG_TRAIN_EXPECTED
    assert _pairs(test) == DOG_TEST_EXPECTED
    assert train.classes == DOG_CLASSES and test.classes == DOG_CLASSES
    assert sorted(train.targets) == [0, 0, 1, 2, 2]
    assert all(os.path.isabs(p) for p, _ in train.samples + test.samples)


def test_dogs_items_are_normalized_tensors(tmp_path: Path) -> None:
    train, test = load_dogs(make_dogs(tmp_path), image_size=32)
    for ds in (train, test):
        x, y = ds[0]
        assert isinstance(x, torch.Tensor) and x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert isinstance(y, int) and 0 <= y < 3
    # Eval is deterministic: a uniform (200,100,50) image normalizes to known per-channel values (JPEG +-2/255).
    x, _ = test[0]
    expected = (torch.tensor([200, 100, 50]) / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor(
        [0.229, 0.224, 0.225])
    assert torch.allclose(x.mean(dim=(1, 2)), expected, atol=0.05)


def test_dogs_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as e:
        load_dogs(missing)
    msg = str(e.value)
    assert str(missing) in msg and "images.tar" in msg and "lists.tar" in msg and "\n" not in msg


def test_dogs_missing_list_file(tmp_path: Path) -> None:
    make_dogs(tmp_path)
    (tmp_path / "test_list.mat").unlink()
    with pytest.raises(DataError, match="test_list.mat is missing") as e:
        load_dogs(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_dogs_missing_listed_image(tmp_path: Path) -> None:
    make_dogs(tmp_path)
    gone = tmp_path / "Images" / "n02085782-Japanese_spaniel" / "n02085782_2.jpg"
    gone.unlink()
    with pytest.raises(DataError) as e:
        load_dogs(tmp_path)
    assert str(gone) in str(e.value) and "1 of 8" in str(e.value)


def test_dogs_label_out_of_range(tmp_path: Path) -> None:
    bad = [(rel, lab) for rel, lab in DOG_TRAIN]
    bad[2] = (bad[2][0], 0)  # labels are 1-based: 0 is invalid
    make_dogs(tmp_path, train=bad)
    with pytest.raises(DataError, match=r"train_list\.mat: entry 3"):
        load_dogs(tmp_path)


def test_dogs_corrupt_image_fails_on_getitem(tmp_path: Path) -> None:
    make_dogs(tmp_path)
    broken = tmp_path / "Images" / "n02085620-Chihuahua" / "n02085620_1.jpg"
    broken.write_bytes(b"this is not a jpeg at all" * 10)
    train, _ = load_dogs(tmp_path, image_size=32)  # presence is checked at load time, decoding only on access
    index = [os.path.basename(p) for p, _ in train.samples].index("n02085620_1.jpg")
    with pytest.raises(DataError) as e:
        train[index]
    assert str(broken) in str(e.value) and "re-extract" in str(e.value) and "\n" not in str(e.value)


# --- CUB-200-2011 ---------------------------------------------------------------------------------------------

CUB_IMAGES = [  # (image_id, relative path under images/, class id, is_train)
    (1, "001.Black_footed_Albatross/Black_Footed_Albatross_0001.jpg", 1, 1),
    (2, "001.Black_footed_Albatross/Black_Footed_Albatross_0002.jpg", 1, 0),
    (3, "002.Laysan_Albatross/Laysan_Albatross_0001.jpg", 2, 1),
    (4, "002.Laysan_Albatross/Laysan_Albatross_0002.jpg", 2, 1),
    (5, "003.Sooty_Albatross/Sooty_Albatross_0001.jpg", 3, 0),
    (6, "003.Sooty_Albatross/Sooty_Albatross_0002.jpg", 3, 1),
]
CUB_TRAIN_EXPECTED = {("Black_Footed_Albatross_0001.jpg", 0), ("Laysan_Albatross_0001.jpg", 1),
                      ("Laysan_Albatross_0002.jpg", 1), ("Sooty_Albatross_0002.jpg", 2)}
CUB_TEST_EXPECTED = {("Black_Footed_Albatross_0002.jpg", 0), ("Sooty_Albatross_0001.jpg", 2)}
CUB_CLASSES = ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross"]


def make_cub(base: Path, with_classes: bool = True, labels_override: dict[int, str] | None = None) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    for _, rel, _, _ in CUB_IMAGES:
        _jpeg(base / "images" / rel)
    (base / "images.txt").write_text("".join(f"{i} {rel}\n" for i, rel, _, _ in CUB_IMAGES))
    (base / "train_test_split.txt").write_text("".join(f"{i} {t}\n" for i, _, _, t in CUB_IMAGES))
    labels = {i: str(c) for i, _, c, _ in CUB_IMAGES} | (labels_override or {})
    (base / "image_class_labels.txt").write_text("".join(f"{i} {labels[i]}\n" for i, *_ in CUB_IMAGES))
    if with_classes:
        (base / "classes.txt").write_text(
            "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n3 003.Sooty_Albatross\n")
    return base


@pytest.mark.parametrize("nested_dir", [False, True])
@pytest.mark.parametrize("with_classes", [True, False])
def test_cub_official_split(tmp_path: Path, nested_dir: bool, with_classes: bool) -> None:
    make_cub(tmp_path / "CUB_200_2011" if nested_dir else tmp_path, with_classes)
    train, test = load_cub(tmp_path, image_size=32)
    assert (len(train), len(test)) == (4, 2)
    assert _pairs(train) == CUB_TRAIN_EXPECTED
    assert _pairs(test) == CUB_TEST_EXPECTED
    assert train.classes == CUB_CLASSES and test.classes == CUB_CLASSES
    x, y = train[0]
    assert x.shape == (3, 32, 32) and isinstance(y, int)
    assert test[1][0].shape == (3, 32, 32)


def test_cub_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "no_cub"
    with pytest.raises(DataError) as e:
        load_cub(missing)
    assert str(missing) in str(e.value) and "CUB_200_2011.tgz" in str(e.value) and "\n" not in str(e.value)


def test_cub_missing_metadata_file(tmp_path: Path) -> None:
    base = make_cub(tmp_path / "CUB_200_2011")
    (base / "train_test_split.txt").unlink()
    with pytest.raises(DataError, match="train_test_split.txt is missing"):
        load_cub(tmp_path)


def test_cub_missing_listed_image(tmp_path: Path) -> None:
    base = make_cub(tmp_path)
    gone = base / "images" / "003.Sooty_Albatross" / "Sooty_Albatross_0001.jpg"
    gone.unlink()
    with pytest.raises(DataError) as e:
        load_cub(tmp_path)
    assert str(gone) in str(e.value) and "1 of 6" in str(e.value)


@pytest.mark.parametrize("bad, pattern", [("4", r"image_class_labels\.txt:5: class id 4"),
                                          ("0", r"image_class_labels\.txt:5: class id 0"),
                                          ("three", r"image_class_labels\.txt:5: cannot parse")])
def test_cub_bad_label(tmp_path: Path, bad: str, pattern: str) -> None:
    make_cub(tmp_path, labels_override={5: bad})
    with pytest.raises(DataError, match=pattern):
        load_cub(tmp_path)


def test_cub_corrupt_image_fails_on_getitem(tmp_path: Path) -> None:
    base = make_cub(tmp_path)
    broken = base / "images" / "002.Laysan_Albatross" / "Laysan_Albatross_0002.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    train, _ = load_cub(tmp_path, image_size=32)
    index = [os.path.basename(p) for p, _ in train.samples].index("Laysan_Albatross_0002.jpg")
    with pytest.raises(DataError) as e:
        train[index]
    assert str(broken) in str(e.value) and "re-extract" in str(e.value)


# --- transforms and how-to strings ----------------------------------------------------------------------------

def test_transforms_output_shape() -> None:
    img = Image.new("RGB", (40, 30), (10, 20, 30))
    assert train_transform(32)(img).shape == (3, 32, 32)
    assert eval_transform(32)(img).shape == (3, 32, 32)
    assert eval_transform(224).transforms[0].size in (256, [256], (256,))


def test_missing_data_messages_say_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as dogs:
        load_dogs(tmp_path / "nothing")
    assert "http://vision.stanford.edu/aditya86/ImageNetDogs/" in str(dogs.value)
    assert "images.tar" in str(dogs.value) and "lists.tar" in str(dogs.value)
    with pytest.raises(DataError) as cub:
        load_cub(tmp_path / "nothing")
    assert "https://data.caltech.edu/records/65de6-vhk20" in str(cub.value) and "CUB_200_2011.tgz" in str(cub.value)
