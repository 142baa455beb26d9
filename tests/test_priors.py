"""Priors for runs: class frequencies and user files."""

import pytest
import torch

from tsla.errors import ConfigError
from tsla.losses.priors import class_frequency_prior, read_prior_file, resolve_prior


def test_class_frequency_by_hand():
    prior = class_frequency_prior(torch.tensor([0, 0, 0, 1, 2, 2, 2, 2]), 4)
    assert prior.tolist() == [3 / 8, 1 / 8, 4 / 8, 0.0]


def test_prior_file(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("# three classes\n0.5, 0.25\n0.25\n")
    assert read_prior_file(f, 3).tolist() == [0.5, 0.25, 0.25]
    assert resolve_prior("uniform", torch.tensor([0]), 3) is None


@pytest.mark.parametrize(
    "text,message",
    [("0.5 0.5", "shape"), ("1.5 -0.5 0", "negative"), ("0.3 0.3 0.3", "sums to"), ("0.5 x 0.5", "not a number")],
)
def test_bad_prior_files(tmp_path, text, message):
    f = tmp_path / "p.txt"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        read_prior_file(f, 3)
    assert str(f) in str(info.value)


def test_missing_prior_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        read_prior_file(tmp_path / "nope.txt", 3)
