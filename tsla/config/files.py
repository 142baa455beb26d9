"""The configuration's files: the keys a YAML file may give, reading YAML safely (no aliases or merge keys, no repeated
keys, bounded size and depth, errors that name the file), merging layers into a validated
:class:`tsla.config.TrainConfig`, and the text of RUN/config.yaml.
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


MAX_CONFIG_BYTES = 256 * 1024
"""The largest --config file read: a config holds a few dozen ``option: value`` lines (a few kB); PyYAML's pure-Python
parser takes about a minute per MB, so a file far larger is refused rather than parsed."""
MAX_DEPTH = 8
"""The deepest nesting of collections read: a config is a mapping of scalars and lists (depth 2); deeper nesting
would only be refused later, and thousands of levels made PyYAML fail with RecursionError."""
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where installed: the same data, faster


def _check_events(text: str, path: Path) -> None:
    """One pass over the YAML events (no recursion): refuse aliases, nesting deeper than ``MAX_DEPTH`` and a key
    that a mapping gives twice. Raises ``ConfigError`` naming the file (and the line)."""
    stack: list[list[Any] | None] = []  # per open collection: [keys seen, next scalar is a key] or None (a sequence)

    def entry(event: yaml.Event) -> None:
        frame = stack[-1] if stack else None
        if frame is None:
            return
        keys, is_key = frame
        frame[1] = not is_key
        if is_key and isinstance(event, yaml.ScalarEvent):
            if event.value == "<<" and event.implicit[0]:  # a merge key: its values lose to the mapping's own
                raise ConfigError(f"config file {path} uses a YAML merge key (<<, line {event.start_mark.line + 1}): "
                                  f"write each option once, in full")
            if event.value in keys:  # YAML would let the last one win silently
                raise ConfigError(f"config file {path} gives {event.value!r} twice (again at line "
                                  f"{event.start_mark.line + 1}): keep one")
            keys.add(event.value)

    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):  # a few hundred bytes of nested aliases stand for billions of values
            raise ConfigError(f"config file {path} uses a YAML alias (*name): write the values out in full")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            entry(event)
            if len(stack) == MAX_DEPTH:
                raise ConfigError(f"config file {path} nests lists or mappings more than {MAX_DEPTH} deep (line "
                                  f"{event.start_mark.line + 1}): a config is a mapping of option: value")
            stack.append([set(), True] if isinstance(event, yaml.MappingStartEvent) else None)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
        elif isinstance(event, yaml.ScalarEvent):
            entry(event)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file. Refused with ``ConfigError``: an unreadable
    file, one over ``MAX_CONFIG_BYTES`` or not UTF-8, invalid YAML, aliases, nesting deeper than ``MAX_DEPTH``, a
    key given twice, and anything but a mapping at the top. Time and memory grow linearly with the file."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror}): check the --config path") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: a config holds a few "
                          f"dozen option: value lines; check the --config path")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    try:
        _check_events(text, path)
        values = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        if "nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own limit (1,000), met while scanning ahead
            raise ConfigError(f"config file {path} nests lists or mappings more than {MAX_DEPTH} deep{where}: a "
                              f"config is a mapping of option: value") from None
        raise ConfigError(f"config file {path} is not valid YAML{where}: fix its syntax") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must be a mapping of option: value, not a {type(values).__name__}")
    return values


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
