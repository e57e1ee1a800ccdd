"""The Python API: train a recipe, load a run, draw samples, score a run.

    import ganland
    run = ganland.train("gaussian-1d", steps=2000)          # RunResult: run_dir, samples, ...
    model = ganland.load(run.run_dir)                        # the trained generator
    x = model.sample(1000, seed=0)["samples"]                # float32 numpy (1000, 1)
    out = ganland.sample("runs/fashion-dcgan-...", n=64)     # {"images": uint8 (64, 28, 28, 1)}
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .config import load_config, stop_overrides
from .generator import Generator, export, load
from .training.loop import RunResult
from .training.runs import resume as _resume, train as _train

__all__ = ["train", "resume", "load", "sample", "export", "evaluate", "Generator", "RunResult"]


def train(
    recipe: str | dict = "fashion-dcgan",
    overrides: Optional[dict] = None,
    *,
    steps: Optional[int] = None,
    epochs: Optional[float] = None,
    minutes: Optional[float] = None,
    out: Optional[str] = None,
) -> RunResult:
    """Train `recipe` (a name, a YAML path or a mapping) with dotted `overrides`.

    steps / epochs / minutes, when given, replace the recipe's stopping rule.
    """
    overrides = {**(overrides or {}), **stop_overrides(steps, epochs, minutes)}
    return _train(load_config(recipe, overrides), out)


def resume(run_dir: str | Path, *, steps=None, epochs=None, minutes=None) -> RunResult:
    """Continue a run from its newest checkpoint (optionally with a new stopping rule).

    steps / epochs / minutes are totals counted from the start of the run (resume a 5,000-step
    run with steps=10_000 for 5,000 more); one the run has already reached is refused.
    """
    return _resume(run_dir, stop_overrides(steps, epochs, minutes))


def sample(run: str | Path, n: int = 64, classes=None, seed: int = 0, device: str = "cpu",
           truncation: Optional[float] = None) -> dict[str, np.ndarray]:
    """Shortcut for `load(run).sample(n, classes, seed, truncation=truncation)`."""
    return load(run, device).sample(n, classes, seed, truncation=truncation)


def evaluate(run: str | Path, n: Optional[int] = None, seed: Optional[int] = None, feature_net: Optional[str] = None,
             inception_weights: Optional[str] = None, record: bool = True, device: str = "cpu"):
    """Score a run's newest checkpoint (FID, KID, precision/recall, ... or the toy metrics) and,
    when `record`, append the score with its protocol to the run's metrics.jsonl. Returns a Score.
    n, seed and the feature network default to the run's own (see `evaluation.evaluate_run`)."""
    from .evaluation import evaluate_run

    return evaluate_run(run, n, seed, feature_net, inception_weights, record, device)
