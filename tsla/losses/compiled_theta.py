"""theta inside ``torch.compile``: a 0-dim tensor, so that a schedule moving theta changes data, not the graph.

A Python float is a constant to the compiler: every new value compiles the step again (and after 8 values torch
falls back to eager). ``tsla.SmoothingScheduler.theta_tensor`` is one 0-dim tensor rewritten in place outside the
compiled code; the losses read it, or a 0-dim tensor passed as ``theta``, while compiling. Its value is not checked
there (reading it would split the graph): the schedule checked it when it was built.
"""

from __future__ import annotations

import torch

from .checks import check_theta


def theta_for_call(theta, scheduler, fixed, allow_negative: bool, owner: str) -> float | torch.Tensor:
    """The theta a criterion's call uses: a tensor while compiling (:func:`compiled_theta`), else the first of
    ``theta`` (given to the call), the scheduler's current theta, the criterion's ``fixed`` theta, each checked.
    Raises ``ValueError`` when there is none, naming ``owner`` (the criterion's class) in the remedy."""
    compiled = compiled_theta(theta, scheduler)
    if compiled is not None:
        return compiled
    if theta is not None:
        return check_theta(theta, allow_negative)
    if scheduler is not None:
        return check_theta(scheduler.get_last_theta(), allow_negative)
    if fixed is not None:
        return check_theta(fixed, allow_negative)
    raise ValueError(f"no theta for this loss: pass theta= to the call, set criterion.theta, or build "
                     f"{owner}(scheduler=...)")


def compiled_theta(theta, scheduler) -> torch.Tensor | None:
    """While compiling: ``theta`` if it is a tensor, else the scheduler's ``theta_tensor`` (when ``theta`` is None
    and the scheduler has one). None otherwise (outside compilation, or nothing to read as a tensor)."""
    if not torch.compiler.is_compiling():
        return None
    if isinstance(theta, torch.Tensor):
        return theta
    if theta is None and scheduler is not None and hasattr(scheduler, "theta_tensor"):
        return scheduler.theta_tensor
    return None
