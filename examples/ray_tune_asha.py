"""ASHA over TSLA's θ and switch epoch S with Ray Tune, tsla's scheduler in a plain loop (40 %-noisy data).

    pip install 'tsla[tune]'
    python examples/ray_tune_asha.py           # 8 trials, 12 epochs, a few minutes on 2 cores

Two things matter with TSLA. ASHA's first rung must come after the largest S (``grace_period`` > max S): before
its switch a TSLA(S) trial *is* LSR, and judging it there prunes it for a θ it would have dropped (a rung at epoch
10 pruned every θ = 0.4 trial of a 15/25-epoch grid). And each trial reports the best validation score so far, the
early-stopped model's, which is what TSLA's switch is chosen for. Every epoch reports the θ it trained with beside
the config Tune recorded; the last line counts the epochs where they differ (0).
"""

from __future__ import annotations

import argparse
import tempfile

from ray import tune
from ray.tune.schedulers import ASHAScheduler

import tsla
from tuning_common import epochs_at_other_theta, model_and_optimizer, noisy_data, train_epoch, val_top1


def trainable(config: dict) -> None:
    data = noisy_data(config["samples"], seed=0)
    model, optimizer = model_and_optimizer()
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(config["theta"], config["switch"]))
    best = 0.0
    for epoch in range(config["epochs"]):
        theta = train_epoch(model, optimizer, scheduler, data, epoch)
        scheduler.step()
        best = max(best, val_top1(model, data))
        tune.report({"best_val_top1": best, "epoch": epoch, "theta_used": theta})


def main(samples: int = 2000, epochs: int = 12, trials: int = 8, storage: str | None = None) -> tuple[int, int]:
    """Run the ASHA study; print the best trial and return (the epochs trained at a θ other than the one Tune
    recorded for the trial, the epochs trained in all)."""
    switches = [epochs // 2, epochs * 3 // 4]
    asha = ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=max(switches) + 1,
                         reduction_factor=2)
    space = {"theta": tune.choice([0.1, 0.2, 0.4]), "switch": tune.choice(switches), "epochs": epochs,
             "samples": samples}
    tuner = tune.Tuner(trainable, param_space=space,
                       tune_config=tune.TuneConfig(scheduler=asha, metric="best_val_top1", mode="max",
                                                   num_samples=trials, reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=storage or tempfile.mkdtemp(), name="asha", verbose=0))
    results = tuner.fit()
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        rows += zip(frame["epoch"], frame["theta_used"], frame["config/theta"], frame["config/switch"])
    best = results.get_best_result()
    other = epochs_at_other_theta(rows)
    print(f"best: theta {best.config['theta']}, TSLA({best.config['switch']}), best val top-1 "
          f"{best.metrics['best_val_top1']:.3f}")
    print(f"{len(rows)} epochs trained, {other} at a theta other than the one Tune recorded")
    return other, len(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    main(args.samples, args.epochs, args.trials)
