"""A prior's and a weight's values are read once per tensor and again after any in-place change (issue 20, item 5:
the per-call check was the main cost of a custom prior, and of class weights, at small shapes): a tensor passed at
every call is not read again; one changed in place (by hand, through a view, or by an optimizer's step on a learned
prior) is refused at the next call, by the function and by the criterion; inference tensors (no version counter)
are read at every call; inside ``torch.compile`` a bad prior is still refused; ``torch.export``, which has no values
to read, traces the loss with a prior (it failed on reading them before). Reads are counted with a dispatch mode."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tsla import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy


class _Reductions(TorchDispatchMode):
    """Counts ``aten.min`` calls (the check's reduction; the loss itself takes no minimum)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket is torch.ops.aten.min:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _reads(fn) -> int:
    with _Reductions() as mode:
        fn()
    return mode.count


def _data(k=4):
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, k, generator=g), torch.randint(0, k, (6,), generator=g)


def test_a_prior_passed_at_every_call_is_read_once_and_again_after_an_in_place_change():
    logits, target = _data()
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])

    def call():
        return label_smoothing_cross_entropy(logits, target, 0.2, prior=prior)

    assert _reads(call) == 1
    assert _reads(call) == 0
    with torch.no_grad():
        prior[:2] = torch.tensor([0.2, 0.1])  # still a distribution: accepted, after one more read
    assert _reads(call) == 1
    assert _reads(call) == 0
    prior.mul_(2)
    with pytest.raises(ValueError, match="prior sums to 2, not 1"):
        call()
    with pytest.raises(ValueError, match="prior sums to 2, not 1"):  # a refused prior is refused at every call
        call()


def test_a_change_through_a_view_is_seen():
    logits, target = _data()
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4])
    label_smoothing_cross_entropy(logits, target, 0.2, prior=prior)
    prior[1:].fill_(-0.1)
    with pytest.raises(ValueError, match=r"prior\[1\] = -0.1 is negative"):
        label_smoothing_cross_entropy(logits, target, 0.2, prior=prior)


def test_the_criterion_refuses_its_prior_after_an_in_place_change():
    logits, target = _data()
    criterion = LabelSmoothingCrossEntropy(torch.tensor([0.1, 0.2, 0.3, 0.4]), theta=0.2)
    assert _reads(lambda: criterion(logits, target)) == 0  # checked when it was built
    criterion.prior[0] = 0.5
    with pytest.raises(ValueError, match="prior sums to 1.4, not 1"):
        criterion(logits, target)


def test_a_learned_prior_that_an_optimizer_moves_off_the_simplex_is_refused():
    logits, target = _data()
    prior = torch.nn.Parameter(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    criterion = LabelSmoothingCrossEntropy(prior, theta=0.5)
    optimizer = torch.optim.SGD([prior], lr=1.0)
    criterion(logits.double(), target).backward()
    optimizer.step()  # a raw step keeps no constraint: the prior no longer sums to 1
    assert abs(float(prior.detach().sum()) - 1) > 1e-3 or bool((prior.detach() < 0).any())
    with pytest.raises(ValueError, match=r"prior(\[\d\] = \S+ is negative| sums to)"):
        criterion(logits.double(), target)


def test_inference_tensors_are_read_at_every_call():
    logits, target = _data()
    with torch.inference_mode():
        prior = torch.tensor([0.1, 0.2, 0.3, 0.4])
        bad = torch.tensor([0.5, 0.2, 0.3, 0.4])
    call = lambda: label_smoothing_cross_entropy(logits, target, 0.2, prior=prior)  # noqa: E731
    assert _reads(call) == 1
    assert _reads(call) == 1
    with pytest.raises(ValueError, match="prior sums to 1.4"):
        label_smoothing_cross_entropy(logits, target, 0.2, prior=bad)


def test_a_new_tensor_is_read_whatever_id_it_gets():
    logits, target = _data()
    for _ in range(20):  # freed tensors' ids are reused: each new prior must still be read
        with pytest.raises(ValueError, match="sums to"):
            label_smoothing_cross_entropy(logits, target, 0.2, prior=torch.tensor([0.5, 0.2, 0.3, 0.4]))
        label_smoothing_cross_entropy(logits, target, 0.2, prior=torch.tensor([0.1, 0.2, 0.3, 0.4]))


def test_under_torch_compile_a_bad_prior_is_still_refused():
    torch._dynamo.reset()
    logits, target = _data()
    step = torch.compile(lambda z, q: label_smoothing_cross_entropy(z, target, 0.2, prior=q), backend="eager")
    good = torch.tensor([0.1, 0.2, 0.3, 0.4])
    torch.testing.assert_close(step(logits, good), label_smoothing_cross_entropy(logits, target, 0.2, prior=good))
    with pytest.raises(ValueError, match="prior sums to 1.4"):
        step(logits, torch.tensor([0.5, 0.2, 0.3, 0.4]))
    torch._dynamo.reset()


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_traces_the_loss_with_a_prior(strict):
    class Loss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("prior", torch.tensor([0.1, 0.2, 0.3, 0.4]))

        def forward(self, z, t):
            return label_smoothing_cross_entropy(z, t, 0.2, prior=self.prior)

    logits, target = _data()
    exported = torch.export.export(Loss(), (logits, target), strict=strict)
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    want = -(((0.8 * torch.nn.functional.one_hot(target, 4) + 0.2 * prior)
              * torch.log_softmax(logits.double(), 1)).sum(1)).mean()
    torch.testing.assert_close(exported.module()(logits, target).double(), want, rtol=1e-6, atol=1e-6)


def test_a_weight_passed_at_every_call_is_read_once_and_refused_after_an_in_place_change():
    logits, target = _data()
    weight = torch.tensor([1.0, 2.0, 0.5, 1.5])

    def call():
        return label_smoothing_cross_entropy(logits, target, 0.2, weight=weight)

    assert _reads(call) == 1
    assert _reads(call) == 0
    weight[2] = -1.0
    with pytest.raises(ValueError, match=r"weight\[2\] = -1 is negative or not finite"):
        call()
    criterion = LabelSmoothingCrossEntropy(weight=torch.tensor([1.0, 2.0, 0.5, 1.5]), theta=0.2)
    criterion(logits, target)
    assert _reads(lambda: criterion(logits, target)) == 0
    criterion.weight[0] = float("inf")
    with pytest.raises(ValueError, match=r"weight\[0\] = inf is negative or not finite"):
        criterion(logits, target)
