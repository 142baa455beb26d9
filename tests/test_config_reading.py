"""Reading a --config file is bounded: a file far larger than any config, or nested thousands of levels deep, is one
ConfigError naming the file (it took minutes and gigabytes, or raised RecursionError); a key given twice, also through
a YAML merge key (<<), is refused instead of silently overridden; an ordinary config reads as before."""

import time

import pytest

from tsla.cli import main
from tsla.config import read_yaml
from tsla.config.files import MAX_CONFIG_BYTES
from tsla.errors import ConfigError


def test_an_ordinary_config_reads_as_written(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nkeep_epochs: [1, 2]\nlr: 0.05  # per 128 images\nprior: uniform\n")
    assert read_yaml(path) == {"epochs": 3, "keep_epochs": [1, 2], "lr": 0.05, "prior": "uniform"}


def test_nesting_thousands_deep_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: " + "[" * 3000 + "1" + "]" * 3000 + "\n")  # PyYAML's composer recursed per level
    with pytest.raises(ConfigError, match="nests lists or mappings more than 8 deep"):
        read_yaml(path)


def test_a_file_far_larger_than_a_config_is_refused_at_once(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\n" + "# a comment line of forty characters....\n" * (MAX_CONFIG_BYTES // 40))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="is larger than 256 KiB"):
        read_yaml(path)
    assert time.perf_counter() - started < 1.0


def test_a_long_list_below_the_bound_reads_in_linear_time(tmp_path):
    # 180 kB of one list: several seconds with PyYAML's pure-Python parser, well under one with libyaml
    path = tmp_path / "c.yaml"
    path.write_text("keep_epochs: [" + ", ".join(["1"] * 60_000) + "]\n")
    started = time.perf_counter()
    assert read_yaml(path) == {"keep_epochs": [1] * 60_000}
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("text, key", [("epochs: 3\nlr: 0.1\nepochs: 30\n", "'epochs' twice"),
                                       ("<<: {epochs: 3}\nepochs: 30\n", "uses a YAML merge key (<<, line 1)")])
def test_a_key_given_twice_is_refused(tmp_path, capsys, text, key):
    (tmp_path / "c.yaml").write_text(text)
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: config file ") and key in err and err.count("\n") == 1, err
