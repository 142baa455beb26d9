"""The configuration's files: the keys a YAML file may give, reading YAML safely (no aliases, no repeated keys, errors
that name the file), merging layers into a validated :class:`tsla.config.TrainConfig`, and the text of RUN/config.yaml.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import ConfigError

if TYPE_CHECKING:
    from . import TrainConfig


def _flag(name: str) -> str:
    return name.replace("_", "-")


def config_keys() -> tuple[str, ...]:
    """Every config field's name: the keys a YAML file or a preset may give."""
    from . import TrainConfig

    return tuple(f.name for f in dataclasses.fields(TrainConfig))


# the commands' own flags (not training options): a YAML key of that name is refused naming the command
COMMAND_FLAGS = {**dict.fromkeys(("rule", "at", "criterion", "switch_at", "halving"), "tsla select"),
                 **dict.fromkeys(("methods", "engine", "ray_address", "cpus_per_run", "gpus_per_run"), "tsla compare"),
                 **dict.fromkeys(("thetas", "seeds", "jobs", "shard"), "tsla select and tsla compare"),
                 "out": "every command", "dry_run": "every command"}


def check_keys(values: dict[str, Any], source: str) -> None:
    """Raise ``ConfigError`` naming the first key of ``values`` that is not a config field (and, for a command's own
    flag such as tsla select's ``--rule``, that it goes on the command line)."""
    known = set(config_keys())
    for key in values:
        if key in COMMAND_FLAGS:
            raise ConfigError(f"{source}: {key!r} is not a config key but a flag of {COMMAND_FLAGS[key]}: remove it "
                              f"from the file and pass --{_flag(key)} on the command line")
        if key not in known:
            hint = _flag(key) if isinstance(key, str) else key
            raise ConfigError(f"{source}: unknown key {key!r} (no --{hint} option); see 'tsla train --help' for the keys")


def _repeated_key(node: Any) -> tuple[str, int] | None:
    """The first key a YAML mapping (at any depth) gives twice, and the line of its second occurrence; None if none."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    return key.value, key.start_mark.line + 1
                seen.add(key.value)
            found = _repeated_key(value)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _repeated_key(item)
            if found:
                return found
    return None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror}): check the --config path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    try:
        # aliases (*name) are refused: a few hundred bytes of nested aliases stand for billions of values
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise ConfigError(f"config file {path} uses a YAML alias (*name): write the values out in full")
        twice = _repeated_key(yaml.compose(text, Loader=yaml.SafeLoader))
        if twice is not None:  # YAML lets the last one win silently
            raise ConfigError(f"config file {path} gives {twice[0]!r} twice (again at line {twice[1]}): keep one")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: fix its syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of option: value, not a {type(data).__name__}")
    return data


def build_config(*layers: tuple[str, dict[str, Any]]) -> TrainConfig:
    """Merge ``(source, values)`` layers in order (later wins) over the defaults and validate the result."""
    from . import TrainConfig

    merged: dict[str, Any] = {}
    for source, values in layers:
        check_keys(values, source)
        merged.update(values)
    return TrainConfig(**merged)


def config_text(cfg: TrainConfig) -> str:
    """The YAML text of a resolved config, as saved in RUN/config.yaml."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def load_saved_config(path: Path) -> TrainConfig:
    return build_config((str(path), read_yaml(path)))
