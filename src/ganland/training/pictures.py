"""Pictures of a run: samples from fixed noise (an image grid, a scatter over D's surface, sine
curves or a histogram, as the dataset's `plot` says), and the training curves beside them.

samples/step_XXXXXXXXX.png  the fixed-noise samples at that step
samples/latest.png          a copy of the newest
samples/training.png        losses and D's outputs so far, from stats.jsonl
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..data import to_uint8
from ..generator import sample_z
from ..viz import PLOTS, save_grid, training_curves

ROWS_PER_CLASS = 8  # conditional grids: one column per class (the first 10 classes), this many rows
COLUMNS_MAX = 10
PAIRED_COLUMNS = 10  # image-to-image pictures: two blocks of this many test images (input, output, truth rows)


def paired_rows(inputs: torch.Tensor, outputs: np.ndarray, truth: np.ndarray, columns: int) -> np.ndarray:
    """uint8 (3 n, H, W, C) for a grid of `columns`: blocks of three rows, the inputs (their image
    channels, model units (n, C_in, H, W)), the outputs and the truths (uint8 (n, C, H, W))."""
    c = truth.shape[1]
    shown = to_uint8(inputs[:, :c]).numpy()
    rows = []
    for i in range(0, len(truth), columns):
        rows += [shown[i:i + columns], outputs[i:i + columns], truth[i:i + columns]]
    return np.ascontiguousarray(np.concatenate(rows).transpose(0, 2, 3, 1))


class Pictures:
    """Draws the same inputs at every call, so pictures of one run can be compared step by step.

    generate(z, c) -> CPU float (N, *shape): the generator to draw (G_ema or G, in eval mode).
    D: the discriminator, whose logit surface is drawn behind unconditional 2-D samples.
    """

    def __init__(self, run_dir: Path, title: str, train_set, test_set, n_classes: int, z_dim: int, z_prior: str,
                 seed: int, D: nn.Module, device: torch.device):
        self.folder = Path(run_dir) / "samples"
        self.title, self.train_set, self.D, self.device = title, train_set, D, device
        self.plot = PLOTS.get(train_set.plot)
        n, self.fixed_c, self.columns = self.plot.n, None, None
        if n_classes:
            self.columns = min(n_classes, COLUMNS_MAX)
            n = ROWS_PER_CLASS * self.columns
            self.fixed_c = torch.arange(n) % self.columns  # (n,): class k in column k
        self.paired = getattr(train_set, "cond_shape", None) is not None
        if self.paired:  # image-to-image: fixed test inputs, each drawn beside its output and its truth
            self.columns = min(PAIRED_COLUMNS, len(test_set))
            n = min(2 * PAIRED_COLUMNS, len(test_set)) // self.columns * self.columns  # whole rows only
            self.fixed_c = test_set.inputs(torch.arange(n), seed + 3)  # (n, *cond_shape)
            self.truth = test_set.x[:n]  # uint8 (n, C, H, W)
        self.fixed_z = sample_z(n, z_dim, z_prior, torch.Generator().manual_seed(seed + 3), "cpu")  # (n, z_dim)
        self.real = None  # real samples drawn beside vector samples (images are shown alone)
        if not train_set.is_image:
            self.real = (test_set.draw(self.plot.n, torch.Generator().manual_seed(seed + 4)).numpy()
                         if not test_set.finite else test_set.x[: self.plot.n].float().numpy())
        self.listeners: list[Callable[[Path, int], None]] = []  # given each picture written, with its step
        self.saved_step: Optional[int] = None  # the step of the newest picture written
        pack = getattr(D, "pack", 1)
        self.with_surface = (not train_set.is_image and train_set.shape == (2,) and not n_classes and pack == 1)

    def save(self, step: int, generate: Callable, stats_rows: list[dict]) -> Path:
        """Samples of the fixed noise at `step` (and latest.png), and training.png from `stats_rows`;
        once per step (the end of a run often falls on a picture step)."""
        if step == self.saved_step:
            return self.folder / f"latest{self.plot.suffix}"
        self.saved_step = step
        fake = generate(self.fixed_z, self.fixed_c)
        fake_np = to_uint8(fake).numpy() if self.train_set.is_image else fake.numpy()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step_{step:09d}{self.plot.suffix}"
        critic = self.critic_surface if self.with_surface else None
        title = f"{self.title}: step {step}"
        if self.paired:
            save_grid(path, paired_rows(self.fixed_c, fake_np, self.truth.numpy(), self.columns), ncols=self.columns,
                      title=f"{title} (rows: input, output, truth)")
        else:
            self.plot.draw(path, fake_np, self.real, self.train_set, title, critic, self.columns)
        latest = self.folder / f"latest{self.plot.suffix}"
        shutil.copyfile(path, latest)
        for listener in self.listeners:
            listener(path, step)
        if stats_rows:  # the run's curves so far, beside its newest samples
            training_curves(stats_rows, self.folder / "training.png", title)
        return latest

    @torch.no_grad()
    def critic_surface(self, pts: np.ndarray) -> np.ndarray:
        """D's logits at 2-D points (P, 2) -> (P,), D in eval mode."""
        was = self.D.training
        self.D.eval()
        out = self.D(torch.from_numpy(pts).to(self.device)).float().cpu().numpy()
        self.D.train(was)
        return out

    def latest(self) -> Optional[Path]:
        path = self.folder / f"latest{self.plot.suffix}"
        return path if path.is_file() else None
