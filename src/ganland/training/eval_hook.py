"""What the run measures while it trains: scores of generated samples every `eval.every` steps
(into metrics.jsonl, with samples/quality.png), and D's held-out report at each epoch's end."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..data import to_uint8
from ..evaluation import (EVALUATORS, Score, Target, append_score, dataset_label, evaluate_samples, evaluator_for,
                          load_extractor, read_scores, restoration_inputs)
from ..generator import sample_z
from .distributed import World, sharded
from ..viz import quality_curve

SHOWN_METRICS = 6  # numbers printed on the console line of an evaluation


class InTrainingEval:
    """The cheap metrics on a fixed set of generated samples (KID, PRDC too with eval.full).

    Uses its own fixed noise (eval.seed), so it changes nothing in the training's random streams.
    """

    def __init__(self, cfg, test_set, n_classes: int, run_dir: Path, world: Optional[World] = None):
        e = cfg.eval
        self.run_dir = Path(run_dir)
        self.world = world or World.single()  # several processes: each makes and featurises its share
        self.target = Target(test_set, dataset_label(cfg), tuple(test_set.shape))
        self.evaluator = evaluator_for(self.target)  # fails now, not mid-run, when there are no metrics
        self.curve = EVALUATORS.get(self.evaluator)  # its headline metric and axis
        self.extractor = (sharded(load_extractor(test_set, e.feature_net, e.inception_weights), self.world)
                          if test_set.is_image else None)
        self.z = sample_z(e.n_samples, cfg.model.z_dim, cfg.model.z_prior, torch.Generator().manual_seed(e.seed), "cpu")
        self.c = torch.arange(e.n_samples) % n_classes if n_classes else None
        self.paired = getattr(test_set, "cond_shape", None) is not None
        if self.paired:  # image-to-image: the outputs of the first test images' fixed inputs (as `ganland eval`)
            self.c = restoration_inputs(self.target, e.n_samples, e.seed)
            self.z = self.z[: len(self.c)]
        self.seed, self.full, self.is_image = e.seed, e.full, test_set.is_image
        self.listeners: list[Callable[[Score], None]] = []  # given each score (e.g. TensorBoard)

    def score(self, generate: Callable, step: int) -> Score:
        """Score the generator's samples of the fixed noise at `step` (every process makes its share
        of them, and the features of its share: the score is the one-process score)."""
        mine = self.world.chunk(len(self.z))
        x = generate(self.z[mine], self.c[mine] if self.c is not None else None)
        part = to_uint8(x).permute(0, 2, 3, 1).numpy() if self.is_image else x.numpy()
        samples = np.concatenate(self.world.gather(part))  # in rank order: the one-process order
        labels = self.c.numpy() if self.c is not None and not self.paired else None
        score = evaluate_samples(samples, self.target, self.seed, labels, self.full,
                                 source=f"in-training, step {step}", extractor=self.extractor)
        score.step, score.world_size = step, self.world.size
        return score

    def __call__(self, generate: Callable, step: int) -> str:
        """Score, append to metrics.jsonl, redraw samples/quality.png; returns the console line
        (rank 0 writes; every process takes part in the scoring)."""
        score = self.score(generate, step)
        if not self.world.main:
            return ""
        path = self.run_dir / "metrics.jsonl"
        append_score(path, score)
        for listener in self.listeners:
            listener(score)
        history = [s for s in read_scores(path) if s.source.startswith("in-training")]
        (self.run_dir / "samples").mkdir(exist_ok=True)
        quality_curve(history, self.run_dir / "samples" / "quality.png", self.curve.headline,
                      log_scale=self.curve.log_scale)
        shown = [(k, v) for k, v in score.metrics.items() if not isinstance(v, list)][:SHOWN_METRICS]
        return f"eval step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in shown)


@torch.no_grad()
def heldout_report(D: nn.Module, d_real: Callable, train_set, test_set, n_batches: int, batch_size: int, seed: int,
                   device: torch.device, conditional: bool) -> dict:
    """Seed 000's per-epoch validation: D's real-data loss term `d_real` on a fixed set of test
    batches, next to the same on a fixed set of training batches (D in eval mode).

    Only for finite datasets: a toy sampler draws every batch fresh, so it has no training set
    that D could overfit and no held-out split to compare with ({} then, and for n_batches 0)."""
    if n_batches == 0 or not train_set.finite:
        return {}
    out: dict[str, float] = {}
    was = D.training
    D.eval()
    for name, data in (("heldout", test_set), ("train", train_set)):
        g = torch.Generator().manual_seed(seed + 2)
        chunks = torch.randperm(len(data), generator=g)[: n_batches * batch_size].split(batch_size)
        total = 0.0
        for ix in chunks:
            x, y = data.get(ix)
            c = y.to(device) if conditional else None
            total += float(d_real(D(x.to(device), c)))
        out[f"{name}_loss_D_real"] = total / len(chunks)
    D.train(was)
    return out

