"""The learning rates: a pure function of the generator step, applied to the optimizers.

    lr(step) = base lr * scale * decay(done(step))

scale: 0.5 to the power of the divergence guard's rollbacks (each halves both rates; the count is
in the checkpoint). decay: "none" -> 1; "linear" -> 1 - done. done(step) is the share of the decay
completed: step / horizon, where the horizon is the run's step budget (train.steps, or
train.epochs in generator steps, whichever is smaller).

A run limited by train.minutes alone has no step budget, and a schedule must not depend on the
clock. There `done` stays where it is until the first logging step, where the horizon is
estimated once from the step rate measured so far (`estimate_horizon`); from then on `done` runs
linearly from its value at that step to 1 at the horizon. Both ends are kept in the checkpoint,
so a resumed run continues the same schedule; a resume with another time budget holds the rate
where it was and estimates again, so the rate never jumps.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ..config import OptimizerConfig

DECAY: dict[str, Callable[[float], float]] = {  # done (0..1) -> factor; config.DECAYS lists these names
    "none": lambda done: 1.0,  # constant
    "linear": lambda done: 1.0 - done,  # to 0 at the horizon
}


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
        self.budget, self.minutes = budget, minutes
        self.decays = any(o.decay != "none" for _, o in optimizers.values())
        self.start: tuple[int, float] = (0, 0.0)  # (step, done there): where the decay's straight line starts
        self.horizon = budget  # the step where done reaches 1; None until known
        self.estimated = False  # whether the horizon was estimated from the step rate

    def done(self, step: int) -> float:
        """The share of the decay completed at `step`, 0..1."""
        s0, d0 = self.start
        if self.horizon is None:
            return d0  # held until the horizon is known
        if self.horizon <= s0:
            return 1.0
        return min(1.0, max(d0, d0 + (1.0 - d0) * (step - s0) / (self.horizon - s0)))

    def lr(self, name: str, step: int, scale: float = 1.0) -> float:
        """The rate of optimizer `name` ("G" or "D") at `step`."""
        o = self.optimizers[name][1]
        return o.lr * scale * DECAY[o.decay](self.done(step))

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
        """Fix the horizon at `step`: the steps done plus those the rest of the time budget allows;
        the decay runs on from where it is now."""
        left = max(0.0, 60.0 * self.minutes - seconds_done)
        self.start = (step, self.done(step))
        self.horizon = max(step + 1, step + round(left / max(seconds_per_step, 1e-9)))
        self.estimated = True
        return self.horizon

    def state_dict(self) -> dict:
        return {"start": list(self.start), "horizon": self.horizon, "estimated": self.estimated,
                "minutes": self.minutes}

    def load_state_dict(self, s: dict, step: int, scale: float) -> None:
        """Continue the checkpoint's schedule at `step`. A step budget is always the config's own; an
        estimated horizon carries over while the time budget it was made for stands; otherwise the
        rate is held where the checkpoint left it (read from the optimizers when the checkpoint
        predates schedule states) until the next estimate."""
        if self.budget is not None or not self.decays:
            return
        if s.get("estimated") and s.get("minutes") == self.minutes:
            self.start, self.horizon, self.estimated = (int(s["start"][0]), float(s["start"][1])), int(s["horizon"]), True
            return
        if s.get("estimated"):  # made for another time budget: where that schedule was at this step
            old = LearningRates(self.optimizers, None, None)
            old.start, old.horizon = (int(s["start"][0]), float(s["start"][1])), int(s["horizon"])
            held = old.done(step)
        elif "start" in s:
            held = float(s["start"][1])
        else:
            held = self._done_from_optimizers(scale)
        self.start, self.horizon, self.estimated = (step, held), None, False

    def _done_from_optimizers(self, scale: float) -> float:
        """done, read back from the rate a linearly decaying optimizer holds (for checkpoints written
        before ganland kept the schedule's state)."""
        for opt, o in self.optimizers.values():
            if o.decay == "linear" and opt.param_groups:
                return min(1.0, max(0.0, 1.0 - opt.param_groups[0]["lr"] / (o.lr * scale)))
        return 0.0
