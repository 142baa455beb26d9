"""Population-based training of TSLA's θ with Ray Tune, tsla's scheduler in a plain loop (40 %-noisy data).

    pip install 'tsla[tune]'
    python examples/ray_tune_pbt.py            # 4 trials, 12 epochs, a few minutes on 2 cores

PBT copies a better trial's checkpoint into a worse one and mutates θ. The trap: restoring the scheduler with
``load_state_dict`` refuses the new θ (the saved schedule differs), and ``from_state_dict`` silently trains on with
the copied trial's θ. Build the scheduler from the trial's *current* config and take only the saved position:
``scheduler.load_position(state)``. Every epoch logs the θ it trained with beside the config Tune gave the trial
(to thetas.jsonl in the storage folder); the last line counts the epochs where they differ (0; with
``--restore from_state_dict``, the trap, more).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from ray import tune
from ray.tune.schedulers import PopulationBasedTraining

import tsla
from tuning_common import epochs_at_other_theta, model_and_optimizer, noisy_data, train_epoch, val_top1


def trainable(config: dict) -> None:
    data = noisy_data(config["samples"], seed=0)
    model, optimizer = model_and_optimizer()
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(config["theta"], config["switch"]))
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # PBT's exploit (or a restart): another trial's state, this trial's (new) θ
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / "state.pt", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if config.get("restore") == "from_state_dict":  # the trap, kept to show it: the copied trial's θ
            scheduler = tsla.SmoothingScheduler.from_state_dict(state["smoothing"])
        else:
            scheduler.load_position(state["smoothing"])  # the position only: θ and S stay this config's
        start = state["epoch"] + 1
    for epoch in range(start, config["epochs"]):
        theta = train_epoch(model, optimizer, scheduler, data, epoch)
        scheduler.step()
        with open(config["log"], "a") as log:  # the θ trained with beside the config Tune gave this trial
            print(json.dumps({"epoch": epoch, "theta_used": theta, "theta": config["theta"],
                              "switch": config["switch"], "restored": int(epoch == start > 0)}), file=log)
        with tempfile.TemporaryDirectory() as folder:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "smoothing": scheduler.state_dict(), "epoch": epoch}, Path(folder) / "state.pt")
            tune.report({"val_top1": val_top1(model, data), "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def main(samples: int = 2000, epochs: int = 12, trials: int = 4, restore: str = "position",
         storage: str | None = None) -> tuple[int, int]:
    """Run the PBT study; print each trial's result and return (the epochs trained at a θ other than the one Tune
    recorded for the trial at that epoch, the restores from a checkpoint: PBT's exploits). With
    ``restore="from_state_dict"`` the scheduler is restored the wrong way, to show the trap."""
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=2, quantile_fraction=0.5,
                                  synch=True,  # every trial at the same epoch: the worse half takes the better one's state
                                  resample_probability=0.0,  # θ moves to a neighbour in the list: always another
                                  hyperparam_mutations={"theta": [0.1, 0.2, 0.3, 0.4]})
    storage = storage or tempfile.mkdtemp()
    log = Path(storage) / "thetas.jsonl"  # on storage every worker sees, as Tune's own results
    space = {"theta": tune.grid_search([0.2, 0.3, 0.1, 0.4][:trials]), "switch": epochs * 3 // 4,
             "epochs": epochs, "samples": samples, "restore": restore, "log": str(log)}
    tuner = tune.Tuner(trainable, param_space=space,
                       # reuse_actors: an exploit restarts the trial in its warm process
                       tune_config=tune.TuneConfig(scheduler=pbt, metric="val_top1", mode="max", reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=storage, name="pbt", verbose=0))
    results = tuner.fit()
    for result in results:
        print(f"trial theta now {result.config['theta']}: val top-1 {result.metrics['val_top1']:.3f}")
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    rows = [(r["epoch"], r["theta_used"], r["theta"], r["switch"]) for r in logged]
    exploited = sum(r["restored"] for r in logged)
    other = epochs_at_other_theta(rows)
    print(f"{len(rows)} epochs reported ({exploited} exploits), {other} trained at a theta other than the one Tune "
          f"recorded")
    return other, exploited


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--restore", choices=("position", "from_state_dict"), default="position",
                        help="from_state_dict: restore the scheduler the wrong way, to see the trap")
    args = parser.parse_args()
    main(args.samples, args.epochs, args.trials, args.restore)
