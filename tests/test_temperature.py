"""Temperature scaling: the fitted T against a dense grid search of the NLL, and the trainer's logged test numbers
after it against a recomputation from the saved weights."""

import json

import pytest
import torch
import torch.nn.functional as F

from tsla.report.temperature import fit_temperature, scaled_metrics, temperature_scaled


def _grid_best(logits, labels):
    """The NLL's minimiser over a grid of temperatures: 2,000 from 0.05 to 10, then 2,001 within ±0.01 of the best."""
    z = logits.double()

    def nll(temps):  # every temperature at once: log-sum-exp minus the label's logit, averaged over examples
        scaled = z[None] / temps[:, None, None]
        return (torch.logsumexp(scaled, 2) - scaled[:, torch.arange(z.shape[0]), labels]).mean(1)

    coarse = torch.linspace(0.05, 10, 2_000, dtype=torch.float64)
    centre = float(coarse[nll(coarse).argmin()])
    fine = torch.linspace(centre - 0.01, centre + 0.01, 2_001, dtype=torch.float64)
    return float(fine[nll(fine).argmin()])


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_fit_matches_a_grid_search(scale):
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 10, (400,), generator=g)
    logits = torch.randn(400, 10, generator=g) + 2.0 * F.one_hot(labels, 10)
    logits = logits * scale  # over- (scale > 1) or under-confident (< 1) logits: the fit undoes the scale
    assert fit_temperature(logits, labels) == pytest.approx(_grid_best(logits, labels), abs=1e-4)


def test_scaled_metrics_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
    labels = torch.tensor([0, 0, 1])
    out = scaled_metrics(logits, labels, 2.0)
    p = torch.softmax(logits.double() / 2, 1)
    assert out["nll"] == pytest.approx(float(-(p[[0, 1, 2], labels]).log().mean()), abs=1e-12)
    conf, pred = p.max(1)  # one image per bin here: ECE = mean |correct - confidence|
    assert out["ece"] == pytest.approx(float(((pred == labels).double() - conf).abs().mean()), abs=1e-12)


def test_refuses_empty_or_nonfinite():
    with pytest.raises(ValueError, match="no nan or \\+inf logit"):
        fit_temperature(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="no nan or \\+inf logit"):
        fit_temperature(torch.tensor([[float("inf"), 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="at least one example"):
        fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="own class has a -inf logit"):
        fit_temperature(torch.tensor([[-float("inf"), 0.0]]), torch.tensor([0]))


def test_a_minus_inf_logit_off_the_label_is_a_probability_of_zero():
    """Audit round 4, row 39: a -inf logit (probability 0 at every temperature) used to be refused, so the epoch's
    evaluation raised. The fit now equals a grid search of the NLL computed by hand without that class."""
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 9, (300,), generator=g)  # class 9 is never the label
    logits = 2.5 * (torch.randn(300, 10, generator=g) + 2.0 * F.one_hot(labels, 10))
    logits[::3, 9] = -float("inf")
    z = logits.double()
    finite = torch.isfinite(z)

    def nll(temps):  # per temperature, log-sum-exp over the finite logits only: exp(-inf) = 0
        scaled = torch.where(finite, z, torch.zeros_like(z))[None] / temps[:, None, None]
        m = scaled.max(2, keepdim=True).values
        lse = m[..., 0] + ((scaled - m).exp() * finite).sum(2).log()
        return (lse - z[torch.arange(300), labels][None] / temps[:, None]).mean(1)

    coarse = torch.linspace(0.05, 10, 2_000, dtype=torch.float64)  # then a fine grid around the coarse minimum
    centre = float(coarse[nll(coarse).argmin()])
    fine = torch.linspace(centre - 0.01, centre + 0.01, 2_001, dtype=torch.float64)
    best = float(fine[nll(fine).argmin()])
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(best, abs=1e-4)
    after = scaled_metrics(logits, labels, fitted)
    assert after["nll"] == pytest.approx(float(nll(torch.tensor([fitted], dtype=torch.float64))[0]), abs=1e-9)


def test_trainer_logs_test_calibration_after_scaling(tiny_fashion, tmp_path):
    from tsla.config import TrainConfig
    from tsla.data import build_data
    from tsla.models import build_model
    from tsla.training.trainer import train

    cfg = TrainConfig(data_root=str(tiny_fashion), train_subset=20, val_size=20, epochs=1, batch_size=10,
                      augment=False, threads=1, test_every=1)
    train(cfg, tmp_path / "run", progress_bar=False, log=open("/dev/null", "w"))
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    model = build_model(cfg.model, 10, 1)
    model.load_state_dict(torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"])
    model.eval()
    data = build_data(cfg, torch.device("cpu"))
    with torch.no_grad():
        val = [(model(x), y) for x, y in data.val.epoch(0, 0)]
        test = [(model(x), y) for x, y in data.test.epoch(0, 0)]
    expected = temperature_scaled(torch.cat([v[0] for v in val]), torch.cat([v[1] for v in val]),
                                  torch.cat([t[0] for t in test]), torch.cat([t[1] for t in test]))
    for key in ("ts_temperature", "test_ts_nll", "test_ts_ece"):
        assert record[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7)
