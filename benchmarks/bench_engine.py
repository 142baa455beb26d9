"""The training engine against a bare hand-written loop; the share of step time spent producing batches (ours and a
per-image torchvision pipeline); the CPU speed-up of --channels-last, --amp bf16 and --compile."""

from __future__ import annotations

import copy
import statistics

import torch
import torch.nn.functional as F
from torchvision import transforms as T

from tsla.data.fashion_mnist import MEAN, STD
from tsla.data.in_memory import InMemoryLoader, TensorImages
from tsla.training.engine import StepContext, train_one_epoch
from tsla.losses.cross_entropy import LabelSmoothingCrossEntropy
from tsla.models import build_model

from .timing import alternate, seconds

THETA = 0.1


def _data(n: int) -> TensorImages:
    """Synthetic 28x28 grey images in 10 classes: the speed of a step does not depend on the pixel values."""
    g = torch.Generator().manual_seed(0)
    return TensorImages(torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8),
                        torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)])


def _ctx(model, channels_last=False, amp=None) -> StepContext:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    return StepContext(model=model, optimizer=opt, loss_fn=LabelSmoothingCrossEntropy(), device=torch.device("cpu"),
                       amp=amp, channels_last=channels_last)


def engine_vs_bare(images: int = 2048, repeats: int = 7) -> list[dict]:
    data = _data(images)
    loader = InMemoryLoader(data, 128, MEAN, STD, train=True, padding=2, flip=True)
    torch.manual_seed(0)
    model = build_model("resnet8", 10, 1).to(memory_format=torch.channels_last)
    ctx = _ctx(model, channels_last=True)
    bare_model = copy.deepcopy(model)
    bare_opt = torch.optim.SGD(bare_model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    epoch = [0]

    def engine():
        epoch[0] += 1
        train_one_epoch(ctx, loader.epoch(0, epoch[0]), THETA, epoch[0])

    def bare():
        bare_model.train()
        for x, y in loader.epoch(0, epoch[0]):
            loss = F.cross_entropy(bare_model(x.contiguous(memory_format=torch.channels_last)), y, label_smoothing=THETA)
            bare_opt.zero_grad(set_to_none=True)
            loss.backward()
            bare_opt.step()

    r = alternate(engine, bare, repeats=repeats)
    throughput = 1 / r["ratio"]  # images/s of the engine over images/s of the bare loop
    rows = [{"benchmark": "engine training throughput vs a bare SGD loop", "case": "ResNet-8, 28x28, batch 128",
             "ratio": throughput, "goal": ">= 0.97", "met": throughput >= 0.97,
             "engine_images_per_s": images / r["candidate_s"], "bare_images_per_s": images / r["reference_s"]}]

    # batch production: our batched tensor path, and a per-image PIL pipeline through a DataLoader
    ours = statistics.median(seconds(lambda: [None for _ in loader.epoch(0, 1)]) for _ in range(repeats))
    compute = max(r["candidate_s"] - ours, 1e-9)
    pil = T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])

    class PerImage(torch.utils.data.Dataset):
        def __len__(self):
            return images

        def __getitem__(self, i):
            return pil(T.functional.to_pil_image(data.images[i])), data.targets[i]

    per_image = torch.utils.data.DataLoader(PerImage(), batch_size=128, shuffle=True, num_workers=0)
    before = statistics.median(seconds(lambda: [None for _ in per_image]) for _ in range(3))
    for name, t, goal in (("batched uint8 tensors (tsla)", ours, "< 5%"), ("per-image PIL + DataLoader (before)", before, "")):
        share = t / (t + compute)
        rows.append({"benchmark": "share of step time producing batches", "case": name, "ratio": share,
                     "goal": goal, "met": share < 0.05 if goal else None, "batch_seconds_per_epoch": t,
                     "compute_seconds_per_epoch": compute})
    return rows


def cpu_options(images: int = 2048, repeats: int = 5, compile_too: bool = True, warmup: int = 2) -> list[dict]:
    """Speed-up of each option alone over float32 contiguous, on the engine, on this CPU."""
    data = _data(images)
    loader = InMemoryLoader(data, 128, MEAN, STD, train=True, padding=2, flip=True)
    torch.manual_seed(0)
    base_model = build_model("resnet8", 10, 1)
    reference = _ctx(copy.deepcopy(base_model))
    variants = {"--channels-last": _ctx(copy.deepcopy(base_model).to(memory_format=torch.channels_last), channels_last=True),
                "--amp bf16": _ctx(copy.deepcopy(base_model), amp="bf16")}
    if compile_too:
        variants["--compile"] = _ctx(torch.compile(copy.deepcopy(base_model)))
    rows = []
    for name, ctx in variants.items():
        r = alternate(lambda c=ctx: train_one_epoch(c, loader.epoch(0, 0), THETA, 0),
                      lambda: train_one_epoch(reference, loader.epoch(0, 0), THETA, 0), repeats=repeats, warmup=warmup)
        speedup = 1 / r["ratio"]
        rows.append({"benchmark": "CPU speed-up over float32 contiguous", "case": name, "ratio": speedup, "goal": "",
                     "met": None, "images_per_s": images / r["candidate_s"], "reference_images_per_s": images / r["reference_s"]})
    return rows
