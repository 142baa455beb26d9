"""Label noise on the training labels, drawn once from a recorded seed: symmetric or pair (asymmetric).

``round(p * N)`` training images, chosen uniformly at random, get a wrong label, so exactly that fraction of the
training labels is wrong. *Symmetric* noise draws the new label uniformly from the K - 1 other classes (the flip is
forced to change the class). *Pair* noise sends every class to one fixed partner (:func:`pair_partners`): the
confusable pairs for Fashion-MNIST, class c -> (c + 1) mod K for any other data set (the "pair flip" of the
label-noise literature). The images to flip are the same for both kinds at one seed. The draw depends on
(labels, p, seed) alone: every method and every training seed of a study sees the same noisy labels. Test labels are
never touched; the validation split gets its own draw of the same process (:func:`validation_noise`), logged beside
its clean labels (``--val-label-noise`` says which of the two early stopping and selection read).
"""

from __future__ import annotations

import torch

# Fashion-MNIST's confusable classes, each pair flipped both ways: T-shirt/top (0) <-> Shirt (6), Pullover (2) <->
# Coat (4), Sandal (5) <-> Sneaker (7), Trouser (1) <-> Dress (3), Bag (8) <-> Ankle boot (9)
FASHION_MNIST_PAIRS = ((0, 6), (2, 4), (5, 7), (1, 3), (8, 9))


def pair_partners(dataset: str, num_classes: int) -> list[int]:
    """``partner[c]``: the class pair noise gives to an image of class c (never c itself)."""
    if dataset == "fashion-mnist" and num_classes == 10:
        partner = [0] * 10
        for a, b in FASHION_MNIST_PAIRS:
            partner[a], partner[b] = b, a
        return partner
    return [(c + 1) % num_classes for c in range(num_classes)]


def _flipped(n: int, fraction: float, seed: int, stream: int = 0) -> tuple[torch.Tensor, torch.Generator]:
    """The indices of the ``round(fraction * n)`` images to flip, and the generator that drew them (its next draws
    pick the symmetric noise's new classes). ``stream`` 0 is the training labels' draw, 1 the validation labels'
    (the generator keeps 32 bits of its seed, so the streams differ in the seed's low bits)."""
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"label noise fraction {fraction} is outside [0, 1)")
    gen = torch.Generator().manual_seed(1_000_033 * seed + 29 + stream)
    flips = round(fraction * n)
    return (torch.randperm(n, generator=gen)[:flips] if flips else torch.zeros(0, dtype=torch.long)), gen


def symmetric_noise(targets: torch.Tensor, fraction: float, num_classes: int, seed: int,
                    stream: int = 0) -> torch.Tensor:
    """A copy of ``targets`` (int64, values in [0, K)) with ``round(fraction * N)`` labels moved to another class.

    Raises ``ValueError`` for a fraction outside [0, 1) or fewer than two classes with noise asked for.
    """
    noisy = targets.clone().long()
    chosen, gen = _flipped(noisy.numel(), fraction, seed, stream)
    if chosen.numel() == 0:
        return noisy
    if num_classes < 2:
        raise ValueError("label noise needs at least two classes")
    # an offset in 1..K-1 added modulo K is a uniform draw over the other classes
    offset = torch.randint(1, num_classes, (chosen.numel(),), generator=gen)
    noisy[chosen] = (noisy[chosen].cpu() + offset).remainder(num_classes).to(noisy.device)
    return noisy


def pair_noise(targets: torch.Tensor, fraction: float, partner: list[int], seed: int,
               stream: int = 0) -> torch.Tensor:
    """A copy of ``targets`` with ``round(fraction * N)`` labels, the same images :func:`symmetric_noise` would
    choose at this seed, replaced by their class's ``partner``. Raises ``ValueError`` as :func:`symmetric_noise`."""
    noisy = targets.clone().long()
    chosen, _ = _flipped(noisy.numel(), fraction, seed, stream)
    if chosen.numel() == 0:
        return noisy
    if len(partner) < 2:
        raise ValueError("label noise needs at least two classes")
    noisy[chosen] = torch.as_tensor(partner, dtype=torch.long, device=noisy.device)[noisy[chosen]]
    return noisy


def label_noise(targets: torch.Tensor, fraction: float, kind: str, dataset: str, num_classes: int,
                seed: int, stream: int = 0) -> torch.Tensor:
    """``targets`` with ``kind`` ("symmetric" or "pair") noise, as ``--label-noise-type`` asks (``stream``: see
    :func:`_flipped`)."""
    if kind == "pair":
        return pair_noise(targets, fraction, pair_partners(dataset, num_classes), seed, stream)
    return symmetric_noise(targets, fraction, num_classes, seed, stream)



def validation_noise(targets: torch.Tensor, cfg, num_classes: int) -> torch.Tensor:
    """The validation split's labels under the training labels' noise process (``cfg.label_noise`` of type
    ``cfg.label_noise_type``, seed ``cfg.label_noise_seed``), drawn from the validation stream (1), so never the
    training labels' draw."""
    return label_noise(targets, cfg.label_noise, cfg.label_noise_type, cfg.dataset, num_classes,
                       cfg.label_noise_seed, stream=1)
