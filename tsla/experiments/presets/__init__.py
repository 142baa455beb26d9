"""Named presets: YAML files shipped in ``tsla/presets/``, each documenting where its values come from."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ...config import read_yaml
from ...errors import ConfigError

GRID_KEY = "methods"  # a preset's default method grid for 'tsla compare'


def preset_names() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in resources.files("tsla.experiments.presets").iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> tuple[dict[str, Any], list[str]]:
    """Return ``(config values, compare method grid)`` of the preset ``name``.

    Raises ``ConfigError`` listing the known presets when ``name`` is unknown.
    """
    names = preset_names()
    if name not in names:
        raise ConfigError(f"--preset {name!r} is unknown: choose one of {', '.join(names)}")
    with resources.as_file(resources.files("tsla.experiments.presets") / f"{name}.yaml") as path:
        values = read_yaml(path)
    methods = values.pop(GRID_KEY, [])
    return values, [str(m) for m in methods]
