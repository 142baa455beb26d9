"""The training configuration: one typed, documented dataclass.

Precedence when resolving: dataclass defaults < preset < YAML file (--config) < command-line flags. Every field is a
command-line flag (``batch_size`` -> ``--batch-size``) and a YAML key; the resolved config is saved as
``RUN/config.yaml`` beside every run.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ConfigError
from ..smoothing.methods import METHOD_HELP, check_cli_theta, parse_method
from ..smoothing.switch_rules import RULES
from .files import _flag, build_config, check_keys, config_keys, config_text, load_saved_config, read_yaml  # noqa: F401
# (re-exported: ``from tsla.config import build_config`` and the others keep working)

AUTO_RULES = tuple(RULES)
DATASETS = ("fashion-mnist", "cifar10", "cifar100", "dogs", "cub")
MODELS = ("resnet8", "resnet20", "resnet18", "resnet50")
AMP_CHOICES = ("bf16", "fp16")
NOISE_TYPES = ("symmetric", "pair")
VAL_NOISE = ("none", "same")
MAX_SEED = 2**32 - 1

MAX_THREADS = 1024  # torch would try to start them all
MAX_EPOCHS = 1_000_000  # far beyond any run; a larger count is a typo that would hang the schedule table


def _f(default: Any, help: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything that defines a training run. Field help texts double as the ``--help`` of each flag."""

    # data
    dataset: str = _f("fashion-mnist", f"data set: {', '.join(DATASETS)}")
    data_root: Optional[str] = _f(None, "data directory (default: $TSLA_DATA, then the data set's standard place)")
    download: bool = _f(False, "download the data set if it is missing (needs a network)")
    train_subset: Optional[int] = _f(None, "train on a class-balanced subset of this many images (drawn by --subset-seed)")
    test_subset: Optional[int] = _f(None, "evaluate on a class-balanced subset of this many test images (--subset-seed)")
    subset_seed: int = _f(0, "seed of the subsets; fixed apart from --seed so that every seed sees the same images")
    val_size: Optional[int] = _f(None, "hold out this many class-balanced training images (never in the training "
                                 "subset; drawn by --subset-seed) as a validation set, evaluated every epoch as val_*")
    label_noise: float = _f(0.0, "fraction of training labels replaced by another class, as --label-noise-type "
                            "says (drawn once by --label-noise-seed; validation labels stay clean unless "
                            "--val-label-noise same; test labels always stay clean)")
    label_noise_type: str = _f("symmetric", "kind of --label-noise: symmetric (the new label drawn uniformly from the "
                               "other classes) or pair (every class flipped to one fixed partner: Fashion-MNIST's "
                               "confusable pairs T-shirt/Shirt, Pullover/Coat, Sandal/Sneaker, Trouser/Dress, "
                               "Bag/Ankle boot; class c to c+1 mod K for any other data set)")
    label_noise_seed: int = _f(0, "seed of the label noise; fixed apart from --seed so that every seed and method "
                               "sees the same noisy labels")
    val_label_noise: str = _f("none", "noise of the validation labels: none (clean) or same (the training labels' "
                              "--label-noise process, same rate and type, its own draw: as noisy as a user's "
                              "validation labels). With --label-noise and --val-size both labellings are logged "
                              "every epoch: val_* on the one chosen here (early stopping, tsla select and tsla-auto "
                              "read it) and val_noisy_* or val_clean_* on the other")
    augment: bool = _f(True, "augment the training images (random crop with zero padding + horizontal flip for the "
                       "in-memory data sets); --no-augment trains on the images as they are, the regime in which a "
                       "network memorises its training set")
    image_size: int = _f(224, "crop size in pixels for the image-folder data sets (Dogs, CUB)")
    workers: int = _f(4, "data-loading worker processes for the image-folder data sets")
    # model
    model: str = _f("resnet8", f"model: {', '.join(MODELS)}")
    pretrained: bool = _f(False, "start from torchvision's ImageNet weights (resnet50 only)")
    # smoothing
    method: str = _f("lsr", f"smoothing method: {METHOD_HELP}")
    theta: float = _f(0.1, "smoothing strength theta in [0, 1] (the label is (1-theta)*onehot + theta*prior); "
                      "with --allow-negative also [-1, 0)")
    theta_after: float = _f(0.0, "tsla@S only: theta from epoch S on (0: one-hot labels, TSLA; e.g. -0.2 with "
                            "--allow-negative: negative smoothing)")
    allow_negative: bool = _f(False, "accept a negative --theta / --theta-after (negative label smoothing, "
                              "Wei et al. 2022), down to -1")
    prior: str = _f("uniform", "smoothing prior: uniform, class-frequency, or a text file with one probability per class")
    # theory diagnostics and the automatic switch
    diagnose_every: int = _f(0, "every K epochs, measure sigma^2, delta, theta* and the LSR floor on a fixed training "
                             "subset and log them as diag_* (0: never)")
    diagnose_examples: int = _f(256, "number of training images (class-balanced, >= 2 per class, drawn per --seed) "
                                "the per-example diagnostics use")
    diagnose_batches: int = _f(0, "with --diagnose-every, also measure the train-mode estimator on this many "
                               "independent augmented mini-batches with train-mode BatchNorm, logged as diag_mb_* "
                               "(0: off; costs 2 backward passes per batch)")
    diagnose_bootstrap: int = _f(200, "bootstrap resamples over the diagnostic images for the 95 percent intervals "
                                 "(diag_<key>_lo/_hi; 0: none)")
    auto_rule: str = _f("plateau", "tsla-auto's rule: plateau (the one-hot train loss stopped improving), "
                        "phase-plateau (it stalled within a constant-lr phase: switch at the decay that ends it), "
                        "gain (the measured one-step gain of LSR over one-hot fell below --auto-gain; needs "
                        "--diagnose-every), floor (v1; ||grad F||^2 reached the LSR floor; needs --diagnose-every), "
                        "noise-gap (v3: at the first decay, defer to the last milestone if training top-1 on the given "
                        "labels is below validation top-1; needs --val-size) or val-plateau (v3: switch at a decay "
                        "once validation top-1 stopped rising in that phase; needs --val-size); see docs/selection.md")
    auto_window: int = _f(3, "tsla-auto plateau rule: compare the one-hot train loss with its value this many epochs ago")
    auto_tolerance: float = _f(0.01, "tsla-auto plateau rule: drop smoothing when the loss fell by less than this "
                               "fraction over the window")
    auto_factor: float = _f(1.0, "tsla-auto floor rule: drop smoothing when ||grad F||^2 <= factor x LSR floor")
    auto_rate: float = _f(0.02, "tsla-auto phase-plateau rule: at an lr decay, drop smoothing when the one-hot train "
                          "loss fell by less than this fraction per epoch over the phase's last --auto-window epochs")
    auto_gain: float = _f(1.0, "tsla-auto gain rule: drop smoothing when one_step_gain (LSR's best one-step decrease "
                          "of F over one-hot's) is below this for --auto-patience diagnoses in a row")
    auto_patience: int = _f(2, "tsla-auto gain rule: consecutive diagnoses below --auto-gain needed")
    auto_val_window: int = _f(5, "tsla-auto noise-gap and val-plateau rules: the best validation top-1 is taken over "
                              "this many last epochs of the constant-lr phase (fixed on the study's R1/R2 logs)")
    auto_margin: float = _f(0.0, "tsla-auto noise-gap rule: defer the switch to the last milestone when the training "
                            "top-1 on the given labels is more than this fraction below that validation best")
    auto_min_delta: float = _f(0.0, "tsla-auto val-plateau rule: switch at a decay when the best validation top-1 of "
                               "the phase's last --auto-val-window epochs beat the phase's earlier best by less than "
                               "this fraction")
    keep_checkpoints: int = _f(0, "also keep RUN/checkpoints/epoch-<E>.pt every K epochs, for 'tsla diagnose --epoch' "
                               "(0: only the latest checkpoint)")
    keep_epochs: list = _f([], "also keep RUN/checkpoints/epoch-<E>.pt after these numbers of epochs, e.g. 20,30 "
                           "(branch points for 'tsla train --branch-from RUN --at-epoch E')")
    # optimisation
    epochs: int = _f(12, "number of epochs (counted from 0)")
    batch_size: int = _f(128, "training batch size (images per SGD step)")
    eval_batch_size: int = _f(512, "evaluation batch size")
    test_every: int = _f(1, "evaluate on the test set every K epochs and after the last one (the validation set, "
                         "if any, every epoch); K > 1 saves evaluation time on small training sets; 0 never touches "
                         "the test set (for choosing hyperparameters on validation only)")
    lr: Optional[float] = _f(None, "initial learning rate for the whole batch of --batch-size images "
                             "(default: 0.1, or 0.01 with --pretrained, as fine-tuning wants a smaller step)")
    momentum: float = _f(0.9, "SGD momentum")
    nesterov: bool = _f(False, "use Nesterov momentum")
    weight_decay: float = _f(5e-4, "L2 weight decay")
    lr_schedule: str = _f("step", "learning-rate schedule: step (divide at --milestones) or cosine")
    milestones: list = _f([], "epochs at which the step schedule multiplies the lr by --lr-gamma, e.g. 100,150")
    lr_gamma: float = _f(0.1, "factor applied to the lr at each milestone")
    # execution
    seed: int = _f(0, "random seed (model initialisation, data order, augmentation)")
    device: str = _f("auto", "device: auto (CUDA when present), cpu, cuda, cuda:N")
    threads: Optional[int] = _f(None, "CPU threads for torch's kernels (default: torch's current count, recorded in "
                                "config.yaml); the numbers a run computes depend on it, so --resume keeps it")
    amp: Optional[str] = _f(None, "mixed precision: bf16 or fp16 (default: off, float32)")
    channels_last: bool = _f(False, "use the channels-last memory format (faster convolutions on many CPUs and GPUs)")
    compile: bool = _f(False, "compile the model with torch.compile (slow first epoch; see docs/performance.md)")
    sync_bn: bool = _f(False, "under torchrun, compute BatchNorm statistics over the global batch (SyncBatchNorm)")

    def __post_init__(self) -> None:
        _check_types(self)
        if self.dataset not in DATASETS:
            raise ConfigError(f"--dataset {self.dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
        if self.model not in MODELS:
            raise ConfigError(f"--model {self.model!r} is unknown: choose one of {', '.join(MODELS)}")
        if self.pretrained and self.model != "resnet50":
            raise ConfigError(f"--pretrained is available for resnet50 only, not {self.model}: drop the flag")
        if self.test_every < 0:
            raise ConfigError(f"--test-every must be >= 0 (got {self.test_every}); 0 never evaluates the test set")
        for name in ("epochs", "batch_size", "eval_batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{_flag(name)} must be >= 1 (got {getattr(self, name)})")
        if self.epochs > MAX_EPOCHS:  # the schedule table and the per-epoch checks walk every epoch
            raise ConfigError(f"--epochs {self.epochs} is more than {MAX_EPOCHS:,}: give the number of passes over "
                              f"the training set (a typo? e.g. --epochs 100)")
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{_flag(name)} must be >= 1 (got {value}); leave it out to use every image")
        if self.val_size is not None and self.val_size < 1:
            raise ConfigError(f"--val-size must be >= 1 (got {self.val_size}); leave it out for no validation set")
        if not (0.0 <= self.label_noise < 1.0):
            raise ConfigError(f"--label-noise {self.label_noise} is outside [0, 1): give the fraction of training "
                              f"labels to corrupt, e.g. 0.4")
        if self.label_noise_type not in NOISE_TYPES:
            raise ConfigError(f"--label-noise-type {self.label_noise_type!r} is unknown: choose symmetric or pair")
        if self.label_noise_type != "symmetric" and not self.label_noise:
            raise ConfigError(f"--label-noise-type {self.label_noise_type} has no effect without --label-noise: pass "
                              f"the fraction to flip, e.g. --label-noise 0.4, or drop --label-noise-type")
        if self.val_label_noise not in VAL_NOISE:
            raise ConfigError(f"--val-label-noise {self.val_label_noise!r} is unknown: choose none or same")
        if self.val_label_noise == "same" and (not self.label_noise or self.val_size is None):
            raise ConfigError("--val-label-noise same copies the training labels' noise to the validation split: it "
                              "needs --label-noise (the noise to copy) and --val-size (the split)")
        if self.dataset in ("dogs", "cub") and (self.val_size is not None or self.label_noise or not self.augment):
            raise ConfigError(f"--val-size, --label-noise and --no-augment are available for fashion-mnist and CIFAR, "
                              f"not yet for --dataset {self.dataset}: leave them out")
        if self.workers < 0:
            raise ConfigError(f"--workers must be >= 0 (got {self.workers})")
        check_cli_theta(self.theta, "--theta", self.allow_negative)
        if self.lr is None:  # resolved here, so config.yaml and --dry-run always show the number used
            self.lr = 0.01 if self.pretrained else 0.1
        if self.lr <= 0:
            raise ConfigError(f"--lr must be > 0 (got {self.lr})")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ConfigError("--momentum and --weight-decay must be >= 0")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("--nesterov needs --momentum > 0")
        if self.lr_schedule not in ("step", "cosine"):
            raise ConfigError(f"--lr-schedule {self.lr_schedule!r} is unknown: choose step or cosine")
        if self.lr_schedule == "cosine" and self.milestones:
            raise ConfigError("--milestones applies to --lr-schedule step only: pass --milestones '' with cosine")
        self.milestones = sorted(int(m) for m in self.milestones)
        for m in self.milestones:
            if not (0 < m < self.epochs):  # not scaled silently: a flag must not change another's meaning
                raise ConfigError(f"--milestones: {m} is not between 1 and epochs-1 ({self.epochs - 1}): with a "
                                  f"shorter --epochs, pass milestones within the run, e.g. --milestones "
                                  f"{_example_milestones(self.epochs, len(self.milestones))} (or --milestones '' for "
                                  f"a constant lr)")
        self.schedule()  # after the milestones: a shortened preset names them first
        if not (0 < self.lr_gamma <= 1):
            raise ConfigError(f"--lr-gamma must be in (0, 1] (got {self.lr_gamma})")
        for name in ("seed", "subset_seed", "label_noise_seed"):
            value = getattr(self, name, 0)
            if not (0 <= value <= MAX_SEED):  # every derived seed (seed * 1_000_003 + epoch, ...) must fit 64 bits
                raise ConfigError(f"--{_flag(name)} {value} is outside [0, {MAX_SEED}]: give a smaller seed, e.g. "
                                  f"the value modulo {MAX_SEED + 1}")
        if self.threads is None:  # resolved here, so config.yaml records the count used (see tsla/threads.py)
            import torch

            self.threads = torch.get_num_threads()
        if not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"--threads must lie between 1 and {MAX_THREADS} (got {self.threads}): give the number "
                              f"of CPU threads for torch, at most the cores you have")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"--device {self.device!r} is not supported: use auto, cpu, cuda or cuda:N")
        for name in ("diagnose_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{_flag(name)} must be >= 0 (got {getattr(self, name)})")
        self.keep_epochs = sorted(set(int(e) for e in self.keep_epochs))
        for e in self.keep_epochs:
            if not (0 < e <= self.epochs):
                raise ConfigError(f"--keep-epochs: {e} is not between 1 and --epochs ({self.epochs}); it counts "
                                  f"finished epochs")
        if self.diagnose_examples < 2:
            raise ConfigError(f"--diagnose-examples must be >= 2 (got {self.diagnose_examples})")
        if self.auto_rule not in AUTO_RULES:
            raise ConfigError(f"--auto-rule {self.auto_rule!r} is unknown: choose {', '.join(AUTO_RULES[:-1])} or "
                              f"{AUTO_RULES[-1]}")
        if self.method == "tsla-auto" and self.auto_rule in ("noise-gap", "val-plateau"):
            if self.val_size is None:
                raise ConfigError(f"--auto-rule {self.auto_rule} reads validation top-1: pass --val-size N")
            if not self.milestones:
                raise ConfigError(f"--auto-rule {self.auto_rule} acts at learning-rate decays: pass --lr-schedule "
                                  f"step --milestones E1,E2")
        if self.auto_val_window < 1 or not (-1 < self.auto_margin < 1) or not (0 <= self.auto_min_delta < 1):
            raise ConfigError("--auto-val-window must be >= 1, --auto-margin in (-1, 1), --auto-min-delta in [0, 1)")
        if self.method == "tsla-auto" and self.auto_rule == "gain" and not self.diagnose_every:
            raise ConfigError("--auto-rule gain reads the diagnostics: pass --diagnose-every K")
        if self.method == "tsla-auto" and self.auto_rule == "floor" and self.diagnose_every != 1:
            raise ConfigError("--auto-rule floor measures every epoch: pass --diagnose-every 1")
        if self.auto_window < 1 or not (0 <= self.auto_tolerance < 1) or self.auto_factor <= 0:
            raise ConfigError("--auto-window must be >= 1, --auto-tolerance in [0, 1), --auto-factor > 0")
        if not (0 <= self.auto_rate < 1) or self.auto_gain <= 0 or self.auto_patience < 1:
            raise ConfigError("--auto-rate must be in [0, 1), --auto-gain > 0, --auto-patience >= 1")
        if self.diagnose_batches == 1 or self.diagnose_batches < 0 or self.diagnose_bootstrap < 0:
            raise ConfigError("--diagnose-batches must be 0 (off) or >= 2, --diagnose-bootstrap >= 0")
        if self.amp is not None and self.amp not in AMP_CHOICES:
            raise ConfigError(f"--amp {self.amp!r} is unknown: choose bf16 or fp16, or leave it out for float32")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def schedule(self):
        """The smoothing schedule of this run: ``--method`` with ``--theta``, ``--theta-after`` and ``--epochs``."""
        return parse_method(self.method, self.theta, self.epochs, self.theta_after, self.allow_negative)


def field_default(name: str) -> Any:
    """A config field's default: what a config saved before the field existed meant (e.g. theta_after 0)."""
    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def _example_milestones(epochs: int, count: int) -> str:
    """Milestones for a run of ``epochs`` placed as a typical step schedule places them (1/2, 3/4, ... of the run)."""
    picks = sorted({int(epochs * (1 - 0.5 ** (i + 1))) for i in range(count)} - {0})
    return ",".join(map(str, [m for m in picks if m < epochs])) or "''"


def field_types() -> dict[str, Any]:
    """Field name -> resolved type annotation."""
    return typing.get_type_hints(TrainConfig)


def _check_types(cfg: TrainConfig) -> None:
    """Check (and normalise) every field's type; errors name the flag. YAML 1.1 reads ``1e-3`` as a string, so
    numeric strings are accepted for float fields."""
    for name, kind in field_types().items():
        value = getattr(cfg, name)
        optional = typing.get_origin(kind) is typing.Union and type(None) in typing.get_args(kind)
        base = next(a for a in typing.get_args(kind) if a is not type(None)) if optional else kind
        if value is None and optional:
            continue
        if base is float and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        ok = {
            bool: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
            list: isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        }[base]
        if not ok:
            expected = {list: "a list of integers"}.get(base, base.__name__)
            shown = reprlib.repr(value)  # bounded: a value may be huge (YAML lists, aliases)
            raise ConfigError(f"--{_flag(name)} ({name}: {shown}) has the wrong type: expected {expected}")
        if base is float:
            if not math.isfinite(float(value)):
                raise ConfigError(f"--{_flag(name)} is {value}: give a finite number")
            setattr(cfg, name, float(value))
        if base is list:
            setattr(cfg, name, list(value))
