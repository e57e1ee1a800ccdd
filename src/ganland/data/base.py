"""What every dataset gives the trainer, and the one conversion of pixels to model range.

Images live in memory as one uint8 tensor of shape (N, C, H, W); `to_model_range` is the only
place that turns them into floats in [-1, 1] and `to_uint8` the only way back. Vector data
(1-D normal, sine signals, 2-D mixtures) is float32 (N, D) already in model units.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from ..registry import Registry


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) in [0, 255] -> float32 in [-1, 1] (same shape)."""
    return x.float().mul_(2.0 / 255.0).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model-range images (N, C, H, W) in [-1, 1] -> uint8 in [0, 255], rounded and clamped."""
    return ((x.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


@dataclass
class ArrayDataset:
    """A finite dataset held in memory.

    x: uint8 (N, C, H, W) for images, float32 (N, D) for vectors. y: int64 (N,) or None.
    """

    name: str
    x: torch.Tensor
    y: Optional[torch.Tensor] = None
    class_names: Optional[list[str]] = None
    plot: str = "grid"  # which picture shows its samples: a name in ganland.viz.PLOTS
    evaluator: str = "images"  # how samples are scored: a name in ganland.evaluation.EVALUATORS
    feature_net: Optional[str] = None  # the feature network images are judged with; None = inception-v3-fid
    finite: bool = field(default=True, init=False)

    def __post_init__(self):
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"{self.name}: {len(self.x)} samples but {len(self.y)} labels")
        if not self.is_image and self.evaluator == "images":  # vectors: scored against the test split's own samples
            self.evaluator = "two-sample"

    def __len__(self) -> int:
        return len(self.x)

    @property
    def is_image(self) -> bool:
        return self.x.dtype == torch.uint8

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample in model layout: (C, H, W) or (D,)."""
        return tuple(self.x.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes; 0 when the dataset has no labels."""
        if self.y is None:
            return 0
        return len(self.class_names) if self.class_names else int(self.y.max()) + 1

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Samples at `idx` (B,) in model range: (B, *shape) float32, labels (B,) or None."""
        x = self.x[idx]
        x = to_model_range(x) if self.is_image else x.float()
        return x, (self.y[idx] if self.y is not None else None)


@dataclass
class SamplerDataset:
    """An endless dataset drawn fresh for every batch (toy distributions).

    draw(n, generator) -> float32 (n, D). `target` holds what plots and metrics need to know
    about the true distribution (e.g. {"mean": 10, "std": 0.1} or {"modes": (K, 2), "std": s}).
    """

    name: str
    dim: int
    draw_fn: Callable[[int, torch.Generator], torch.Tensor]
    epoch_size: int = 10_000  # samples that count as one epoch (the stream itself never ends)
    plot: str = "scatter"
    evaluator: str = "two-sample"  # how samples are scored: a name in ganland.evaluation.EVALUATORS
    target: dict = field(default_factory=dict)
    density: Optional[Callable[[np.ndarray], np.ndarray]] = None  # pdf for 1-D plots
    finite: bool = field(default=False, init=False)
    y = None
    class_names = None
    n_classes = 0
    is_image = False
    feature_net = None

    def __len__(self) -> int:
        return self.epoch_size

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n fresh samples, float32 (n, dim), drawn with `generator` (CPU)."""
        x = self.draw_fn(n, generator)
        assert x.shape == (n, self.dim), (x.shape, n, self.dim)
        return x.float()


# name -> builder(split: str, **options) -> ArrayDataset | SamplerDataset
DATASETS: Registry = Registry("dataset")
