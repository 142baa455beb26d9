"""Training throughput of the CIFAR ResNet-18 on CIFAR-100-shaped synthetic data (32x32x3 uint8, 100 classes), held
on the device, through tsla's engine; prints images/s and the projected wall time of the 200-epoch preset.

    python3 -m benchmarks.throughput [--device cuda] [--batch-sizes 128,512] [--images 50000] [--amp bf16]
                                     [--channels-last] [--compile] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from tsla.data.cifar import STATS
from tsla.data.in_memory import InMemoryLoader, TensorImages
from tsla.training.engine import StepContext, evaluate, train_one_epoch
from tsla.losses.cross_entropy import LabelSmoothingCrossEntropy
from tsla.models import build_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(device: torch.device, batch: int, images: int, amp: str | None, channels_last: bool, compile: bool,
            epochs: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    data = TensorImages(torch.randint(0, 256, (images, 3, 32, 32), generator=g, dtype=torch.uint8),
                        torch.randint(0, 100, (images,), generator=g), [str(i) for i in range(100)])
    test = TensorImages(data.images[: images // 5], data.targets[: images // 5], data.classes)
    mean, std = STATS["cifar100"]
    train_loader = InMemoryLoader(data, batch, mean, std, train=True, padding=4, flip=True, device=device)
    test_loader = InMemoryLoader(test, 1024, mean, std, train=False, device=device)
    torch.manual_seed(0)
    raw = build_model("resnet18", 100, 3).to(device)
    if channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    model = torch.compile(raw) if compile else raw
    opt = torch.optim.SGD(raw.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    ctx = StepContext(model=model, optimizer=opt, loss_fn=LabelSmoothingCrossEntropy(check_targets=False).to(device),
                      device=device, amp=amp, channels_last=channels_last, raw_model=raw)
    start = time.perf_counter()
    train_one_epoch(ctx, train_loader.epoch(0, 0), 0.1, 0)  # warm-up: compilation, cuDNN autotuning
    _sync(device)
    warmup = time.perf_counter() - start
    timings = []
    for epoch in range(1, epochs + 1):
        _sync(device)
        start = time.perf_counter()
        train_one_epoch(ctx, train_loader.epoch(0, epoch), 0.1, epoch)
        _sync(device)
        timings.append(time.perf_counter() - start)
    start = time.perf_counter()
    evaluate(ctx, test_loader.epoch(0, 0))
    _sync(device)
    eval_s = (time.perf_counter() - start) * (10_000 / test.targets.numel())  # scaled to CIFAR's 10,000 test images
    ips = images / statistics.median(timings)
    epoch_s = 50_000 / ips + eval_s
    return {"device": str(device), "batch_size": batch, "images": images, "amp": amp, "channels_last": channels_last,
            "compile": compile, "train_images_per_second": ips, "warmup_seconds": warmup,
            "eval_seconds_per_10k": eval_s, "projected_200_epochs_minutes": 200 * epoch_s / 60,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-sizes", default="128,512")
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--amp", choices=["bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--out")
    args = p.parse_args(argv)
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        row = measure(torch.device(args.device), batch, args.images, args.amp, args.channels_last, args.compile)
        rows.append(row)
        print(f"batch {batch}: {row['train_images_per_second']:.0f} images/s on {row['gpu'] or row['device']} "
              f"(amp {args.amp}, channels_last {args.channels_last}, compile {args.compile}); projected 200-epoch "
              f"cifar100-resnet18 run: {row['projected_200_epochs_minutes']:.1f} min", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
