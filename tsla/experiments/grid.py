"""A comparison's grid: its runs (method x theta x seed, a cell's own settings), the branches between them, and its
shards (whole families, balanced by epochs), each run's config validated before anything trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..config import MAX_SEED, TrainConfig, build_config
from ..errors import ConfigError
from ..training.branch import plan_branches


@dataclass(frozen=True)
class GridRun:
    """One cell of the grid: its config and the folder (relative to the comparison directory) it trains in."""

    name: str
    cfg: TrainConfig
    branch: tuple[str, int] | None = None
    """(name of another run of this grid, S): this run starts from that run's state after S epochs (e.g. TSLA(S)
    from the LSR run; see :func:`tsla.training.branch.plan_branches`)."""


def run_dir_name(method: str, seed: int, theta: float | None = None) -> str:
    """``<method>-seed<k>``, or ``<method>-theta<θ>-seed<k>`` when the grid spans several thetas (a cell's own
    settings are named after the method: ``tsla@30-after-0.2-seed0``, ``tsla@30-epochs35-seed0``)."""
    return f"{method}-seed{seed}" if theta is None else f"{method}-theta{theta:g}-seed{seed}"


# what a --methods entry may set for its own runs, and how the run folder names it
CELL_FIELDS = {"theta": ("theta", float), "theta_after": ("after", float), "epochs": ("epochs", int)}


def parse_cell(entry: str) -> tuple[str, dict[str, Any]]:
    """``METHOD[:field=value...]`` -> (method, {field: value}): the fields of :data:`CELL_FIELDS` (``theta-after``
    also spelt with a dash). Raises ``ConfigError`` naming the entry."""
    method, *settings = entry.strip().split(":")
    values: dict[str, Any] = {}
    for setting in settings:
        key, eq, text = setting.partition("=")
        key = key.strip().replace("-", "_")
        if key not in CELL_FIELDS or not eq:
            raise ConfigError(f"--methods entry {entry!r}: {setting!r} is not field=value with a field among "
                              f"{', '.join(CELL_FIELDS)}, e.g. tsla@30:theta_after=-0.2 or tsla@30:epochs=35")
        try:
            values[key] = CELL_FIELDS[key][1](text)
        except ValueError:
            raise ConfigError(f"--methods entry {entry!r}: {text!r} is not a valid {key}") from None
    return method.strip(), values


def _cell_folder(method: str, values: dict[str, Any]) -> str:
    return method + "".join(f"-{CELL_FIELDS[k][0]}{values[k]:g}" for k in CELL_FIELDS if k in values)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n. Raises ``ConfigError``."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: write it as i/n, e.g. 0/4 for the first of four shards") from None
    if n < 1 or not (0 <= i < n):
        raise ConfigError(f"--shard {text!r}: need n >= 1 and 0 <= i < n (shards count from 0)")
    return i, n


def families(grid: list[GridRun]) -> list[list[GridRun]]:
    """The grid's runs grouped by family: a run that branches from none, with every run branching from it (directly
    or through another branch), in grid order; families ordered by their first run."""
    by_name = {run.name: run for run in grid}
    root: dict[str, str] = {}
    for run in grid:  # follow the branch chain up to a run that branches from none in this grid
        name = run.name
        while by_name[name].branch is not None and by_name[name].branch[0] in by_name:
            name = by_name[name].branch[0]
        root[run.name] = name
    groups: dict[str, list[GridRun]] = {}
    for run in grid:
        groups.setdefault(root[run.name], []).append(run)
    return sorted(groups.values(), key=lambda fam: min(grid.index(r) for r in fam))


def family_epochs(family: list[GridRun]) -> int:
    """Epochs a family trains with its branches: the source's, plus each branch's epochs after its branch point."""
    return sum(run.cfg.epochs - (run.branch[1] if run.branch else 0) for run in family)


def select_shard(grid: list[GridRun], shard: tuple[int, int]) -> list[GridRun]:
    """Shard i of n. Whole families (a trunk with all its branches) go to one shard, so every branch finds its
    source's checkpoint: largest family first, each to the shard with the fewest epochs so far (ties: the lowest
    shard). The assignment depends on the grid alone, so the n shards partition it on any machine; a shard keeps
    the grid's order."""
    index, count = shard
    load = [0] * count
    mine: set[str] = set()
    fams = families(grid)
    for fam in sorted(fams, key=lambda f: -family_epochs(f)):  # a stable sort keeps grid order among equals
        target = min(range(count), key=lambda k: (load[k], k))
        load[target] += family_epochs(fam)
        if target == index:
            mine.update(run.name for run in fam)
    return [run for run in grid if run.name in mine]


def _check_distinct(methods: Sequence[str], seeds: Sequence[int], thetas: Sequence[float] | None) -> None:
    """Refuse a grid that would train one run twice: a repeated seed or method, two spellings of one method
    (tsla@1 and tsla@01), or two thetas that name one run folder (0.1 and 0.1000001 are both 'theta0.1')."""
    if len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds must not repeat an entry")
    for seed in seeds:  # checked here, naming --seeds: each run's config would name --seed, a flag not given
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"--seeds: {seed} is outside [0, {MAX_SEED}]: give smaller seeds, e.g. the values "
                              f"modulo {MAX_SEED + 1}")
    seen: dict[str, str] = {}
    for method in methods:
        base, values = parse_cell(method)
        name, _, arg = base.partition("@")
        key = (f"{name}@{int(arg)}" if arg.strip().isdigit() else base) + repr(sorted(values.items()))
        if key in seen:
            raise ConfigError(f"--methods: {seen[key]!r} and {method!r} name the same schedule: list it once")
        seen[key] = method
    folders: dict[str, float] = {}
    for theta in thetas or []:
        folder = f"{theta:g}"
        if folder in folders:
            raise ConfigError(f"--thetas: {folders[folder]!r} and {theta!r} both give run folders named theta{folder}: "
                              f"give thetas that differ in their first 6 significant digits")
        folders[folder] = theta


def plan(
    layers: list, methods: Sequence[str], seeds: Sequence[int], thetas: Sequence[float] | None = None,
    branch: bool = True,
) -> list[GridRun]:
    """Every run of the grid, each config validated before anything trains.

    With several ``thetas`` each method runs once per theta, except ``baseline``, which does not depend on theta, and
    an entry that sets its own theta: those run once per seed. A grid-wide ``theta_after`` (``--theta-after``) applies
    to the grid's ``tsla@S`` runs only, the other methods having no second stage to apply it to. With ``branch``, every run that trains as another run of the grid for its first S epochs
    (TSLA(S) as the LSR run of its seed and theta, reverse@S as the baseline) branches from it after S epochs
    (:func:`tsla.training.branch.plan_branches`): the same result for the cost of the epochs after S.
    """
    if thetas is not None:  # -0 is 0: one run folder (theta0), not two (theta-0 and theta0)
        thetas = [theta + 0.0 for theta in thetas]
    _check_distinct(methods, seeds, thetas)
    grid: list[GridRun] = []
    multi = thetas is not None and len(thetas) > 1
    for entry in methods:
        method, cell = parse_cell(entry)
        once = method == "baseline" or "theta" in cell
        for theta in (thetas or [None]):
            if multi and once and theta != thetas[0]:
                continue
            for seed in seeds:
                values: dict[str, Any] = {"method": method, "seed": seed}
                if theta is not None:
                    values["theta"] = theta
                if not method.startswith("tsla@"):
                    values["theta_after"] = 0.0
                values.update(cell)
                name = run_dir_name(_cell_folder(method, cell), seed, theta if multi and not once else None)
                grid.append(GridRun(name, build_config(*layers, ("--methods/--thetas/--seeds", values))))
    if not branch:
        return grid
    configs, branches = plan_branches({run.name: run.cfg for run in grid})
    return [GridRun(run.name, configs[run.name], branches.get(run.name)) for run in grid]
