"""Training: the step (algorithm), the loop (`Trainer`: order and stopping) and its collaborators
(batches, stats, pictures, eval_hook, guard, schedule, state, interrupt), and checkpoints.

`Trainer`, `train` and `resume` are imported on first use, so that `training.checkpoint` can be
read by modules that the loop itself imports (no import cycle).
"""
from __future__ import annotations

__all__ = ["Trainer", "RunResult", "train", "resume"]


def __getattr__(name: str):
    if name in __all__:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
