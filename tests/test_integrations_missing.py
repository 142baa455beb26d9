"""Each adapter, with its framework missing, fails on import with one line that names the extra to install."""

import importlib
import sys

import pytest


@pytest.mark.parametrize("adapter,hidden,extra", [
    ("lightning", ["lightning", "lightning.pytorch", "pytorch_lightning"], "lightning"),
    ("hf", ["transformers"], "hf"),
    ("hf", ["accelerate"], "hf"),
    ("timm", ["timm", "timm.utils"], "timm"),
])
def test_missing_framework_names_the_extra(adapter, hidden, extra, monkeypatch):
    for name in hidden:
        monkeypatch.setitem(sys.modules, name, None)  # makes "import name" raise ImportError
    monkeypatch.delitem(sys.modules, f"tsla.integrations.{adapter}", raising=False)
    with pytest.raises(ImportError) as info:
        importlib.import_module(f"tsla.integrations.{adapter}")
    message = str(info.value)
    assert "\n" not in message and f'pip install "tsla[{extra}]"' in message
    assert message.startswith(f"tsla.integrations.{adapter} needs ")


def test_plain_loop_helper_needs_no_extra():
    assert callable(importlib.import_module("tsla.integrations.pytorch").end_epoch)
