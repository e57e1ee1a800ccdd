"""The learning rates: a pure function of the generator step, applied to the optimizers.

    lr(step) = base lr * scale * decay(step / horizon)

scale: 0.5 to the power of the divergence guard's rollbacks (each halves both rates; the count is
in the checkpoint). decay: "none" -> 1; "linear" -> 1 - step / horizon, down to 0. The horizon is
the run's step budget: train.steps, or train.epochs in generator steps, whichever is smaller.
A run limited by train.minutes alone has no step budget, and a schedule must not depend on the
clock: its horizon is estimated once, at the first logging step, from the step rate measured so
far (`estimate_horizon`), and kept in the checkpoint, so a resumed run continues the same schedule.
Until then (and for "none") the rates are the base rates times the scale.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ..config import DECAYS, OptimizerConfig

DECAY: dict[str, Callable[[float], float]] = {
    "none": lambda done: 1.0,  # constant
    "linear": lambda done: max(0.0, 1.0 - done),  # to 0 at the end of the horizon
}
assert tuple(DECAY) == DECAYS, "config.DECAYS names the schedules defined here"


def step_budget(steps: Optional[int], epochs: Optional[float], batches_per_epoch: int, n_critic: int) -> Optional[int]:
    """Generator steps the stopping rules allow (the smaller of steps and epochs), None for neither."""
    budgets = [steps] if steps is not None else []
    if epochs is not None:
        budgets.append(math.ceil(epochs * batches_per_epoch / n_critic))  # n_critic batches per G step
    return min(budgets) if budgets else None


class LearningRates:
    """Sets each optimizer's rate for the coming step from (step, scale) alone."""

    def __init__(self, optimizers: dict[str, tuple[torch.optim.Optimizer, OptimizerConfig]], budget: Optional[int],
                 minutes: Optional[float]):
        self.optimizers = optimizers  # {"G": (opt_G, cfg.optim.G), "D": (opt_D, cfg.optim.D)}
        self.horizon = budget  # steps over which a decay runs; None until known
        self.minutes = minutes  # the time budget an estimated horizon was made for
        self.estimated = False  # whether the horizon was estimated from the step rate
        self.decays = any(o.decay != "none" for _, o in optimizers.values())

    def lr(self, name: str, step: int, scale: float = 1.0) -> float:
        """The rate of optimizer `name` ("G" or "D") at `step`."""
        o = self.optimizers[name][1]
        done = step / self.horizon if self.horizon else 0.0
        return o.lr * scale * DECAY[o.decay](done)

    def apply(self, step: int, scale: float = 1.0) -> None:
        for name, (opt, _) in self.optimizers.items():
            rate = self.lr(name, step, scale)
            for group in opt.param_groups:
                group["lr"] = rate

    @property
    def wants_estimate(self) -> bool:
        """Whether the horizon still has to be estimated from the step rate (train.minutes alone)."""
        return self.decays and self.horizon is None and self.minutes is not None

    def estimate_horizon(self, step: int, seconds_done: float, seconds_per_step: float) -> int:
        """Fix the horizon at `step`: the steps done plus those the rest of the time budget allows."""
        left = max(0.0, 60.0 * self.minutes - seconds_done)
        self.horizon = max(step + 1, step + round(left / max(seconds_per_step, 1e-9)))
        self.estimated = True
        return self.horizon

    def state_dict(self) -> dict:
        return {"horizon": self.horizon, "estimated": self.estimated, "minutes": self.minutes}

    def load_state_dict(self, s: dict) -> None:
        """An estimated horizon carries over while the time budget it was made for stands (a new
        --minutes on resume estimates again); a step budget is always the config's own."""
        if s.get("estimated") and s.get("minutes") == self.minutes and self.horizon is None:
            self.horizon, self.estimated = int(s["horizon"]), True
