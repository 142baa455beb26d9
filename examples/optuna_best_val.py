"""Optuna over TSLA's θ and switch epoch S, tsla's scheduler in a plain loop (40 %-noisy data), each trial scored
by its best validation accuracy (the early-stopped model), not its last.

    pip install 'tsla[tune]'
    python examples/optuna_best_val.py         # 12 trials, 12 epochs, a minute on 2 cores

With label noise, the last epoch and the best epoch rank TSLA's switch points differently (study 2: the late
switch wins at the last epoch, the early one once early-stopped), so report and return the score of the model you
will keep. Pruning waits for the largest S (``n_warmup_steps``): before its switch a TSLA(S) trial is LSR. Each
trial records the θ it trained with per epoch; the last line counts the epochs at a θ other than its parameters
give (0).
"""

from __future__ import annotations

import argparse

import optuna

import tsla
from tuning_common import epochs_at_other_theta, model_and_optimizer, noisy_data, train_epoch, val_top1


def objective(trial: optuna.Trial, data: dict, epochs: int) -> float:
    switches = [epochs // 2, epochs * 3 // 4]
    theta = trial.suggest_categorical("theta", [0.1, 0.2, 0.4])
    switch = trial.suggest_categorical("switch", switches)
    model, optimizer = model_and_optimizer()
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(theta, switch))
    best, used = 0.0, []
    for epoch in range(epochs):
        used.append(train_epoch(model, optimizer, scheduler, data, epoch))
        scheduler.step()
        best = max(best, val_top1(model, data))
        trial.set_user_attr("theta_used", used)
        trial.report(best, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return best


def main(samples: int = 2000, epochs: int = 12, trials: int = 12) -> tuple[int, int]:
    """Run the study; print the choice and return (the epochs trained at a θ other than the trial's parameters
    give, the epochs trained in all)."""
    data = noisy_data(samples, seed=0)
    pruner = optuna.pruners.MedianPruner(n_warmup_steps=epochs * 3 // 4 + 1)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0), pruner=pruner)
    study.optimize(lambda trial: objective(trial, data, epochs), n_trials=trials)
    rows = [(epoch, used, t.params["theta"], t.params["switch"]) for t in study.trials
            for epoch, used in enumerate(t.user_attrs.get("theta_used", []))]
    other = epochs_at_other_theta(rows)
    print(f"best: theta {study.best_params['theta']}, TSLA({study.best_params['switch']}), best val top-1 "
          f"{study.best_value:.3f}")
    print(f"{len(rows)} epochs trained, {other} at a theta other than the trial's parameters")
    return other, len(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main(args.samples, args.epochs, args.trials)
