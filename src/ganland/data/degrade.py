"""Paired data for image-to-image training: an image dataset, and a degradation that makes each
image's input (seed 002's restoration tasks: super-resolution, inpainting, denoising).

A degradation maps model-range images x (N, C, H, W) in [-1, 1] to G's input at the same size,
(N, C + extra, H, W):

- `downsample` (factor 2, 4 or 8): the image shrunk by the factor (bicubic, antialiased) and grown back
  to full size (bicubic), so G refines the bicubic upsampling: the input *is* the bicubic baseline;
- `mask` (random rectangles, or free-form strokes): the missing pixels set to 0 (mid-grey) and the
  mask itself given to G as one more channel (1 = missing);
- `noise` (Gaussian, a set standard deviation in model units, where the pixel range is 2).

Randomness (where the holes are, the noise) comes in a separate tensor drawn for a whole global
batch (`draw`) with the data-order generator, so a resumed run sees the same inputs and the inputs
do not depend on the number of processes; `apply` is then deterministic. `PairedDataset` wraps the
image dataset: its fixed inputs (`inputs`) are what evaluation, pictures and D's held-out report use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import Registry
from .base import to_model_range

DEGRADATIONS: Registry = Registry("degradation")
FILL = 0.0  # the value of missing pixels in model range (mid-grey)


class Degradation:
    """The base: `extra` channels added to the image's (the mask's), `needs_draw` when random."""

    name = ""
    extra = 0
    baseline = "the inputs"  # what the inputs are as an answer, in words (the floor a model must beat)
    scale = 1  # how much larger than a user's degraded image the model's input is (super-resolution: the factor)

    def spec(self) -> str:
        """The degradation and its settings in one token, e.g. "downsample(factor=4)" (protocols, labels)."""
        raise NotImplementedError

    def draw(self, n: int, shape: tuple[int, int, int], generator: torch.Generator) -> Optional[torch.Tensor]:
        """The randomness of n inputs of image shape (C, H, W), float32 on the generator's device; None
        when the degradation is deterministic."""
        return None

    def apply(self, x: torch.Tensor, r: Optional[torch.Tensor]) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] and their randomness -> G's inputs (N, C + extra, H, W)."""
        raise NotImplementedError

    def check_size(self, h: int, w: int) -> None:
        """A ConfigError when images of this size cannot be degraded."""

    def given(self, x: torch.Tensor, masks) -> torch.Tensor:
        """G's inputs from images a user gives already degraded (model range (N, C, H, W)), with
        their masks (N, H, W) on the 0..255 scale where the degradation needs them: by default the
        images themselves (noisy images, for denoising)."""
        if masks is not None:
            raise ConfigError(f"masks are for inpainting models; this one was trained on {self.spec()}")
        return x

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        r = self.draw(len(x), tuple(x.shape[1:]), generator)
        return self.apply(x, r.to(x.device) if r is not None else None)


@dataclass
class Downsample(Degradation):
    factor: int = 4
    name = "downsample"
    baseline = "bicubic upsampling"

    def spec(self) -> str:
        return f"downsample(factor={self.factor})"

    def check_size(self, h: int, w: int) -> None:
        if h % self.factor or w % self.factor:
            raise ConfigError(f"downsample by {self.factor} needs image sides divisible by {self.factor}; the images "
                              f"are {h}x{w} px. Set data.image_size to a multiple of {self.factor} or change "
                              "data.degrade_options.factor")

    def shrink(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H/f, W/f): what a camera of 1/f the resolution records."""
        h, w = x.shape[-2:]
        return F.interpolate(x.float(), size=(h // self.factor, w // self.factor), mode="bicubic",
                             align_corners=False, antialias=True)

    def grow(self, small: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, C, h*f, w*f): bicubic upsampling, clamped to the pixel range."""
        h, w = small.shape[-2:]
        return F.interpolate(small.float(), size=(h * self.factor, w * self.factor), mode="bicubic",
                             align_corners=False).clamp_(-1.0, 1.0)

    @property
    def scale(self) -> int:
        return self.factor

    def apply(self, x, r):
        return self.grow(self.shrink(x))

    def given(self, x, masks):
        """Low-resolution images, grown as in training."""
        if masks is not None:
            raise ConfigError("masks are for inpainting models; this one does super-resolution")
        return self.grow(x)


@dataclass
class Mask(Degradation):
    shape: str = "box"  # "box": one rectangle per image; "strokes": free-form brush strokes
    min_size: float = 0.25  # box: the smallest side as a fraction of the image side
    max_size: float = 0.5  # box: the largest side as a fraction of the image side
    strokes: int = 3  # strokes: brush strokes per image
    width: float = 0.12  # strokes: brush width as a fraction of the image side
    name = "mask"
    extra = 1
    baseline = "the holes left grey"

    def __post_init__(self):
        if self.shape not in ("box", "strokes"):
            raise ConfigError(f"data.degrade_options.shape must be 'box' or 'strokes', got {self.shape!r}")
        if not 0 < self.min_size <= self.max_size <= 1:
            raise ConfigError(f"mask sizes need 0 < min_size <= max_size <= 1, got min_size={self.min_size}, "
                              f"max_size={self.max_size}")
        if self.strokes < 1 or not 0 < self.width <= 1:
            raise ConfigError(f"mask strokes need strokes >= 1 and 0 < width <= 1, got {self.strokes}, {self.width}")

    def spec(self) -> str:
        if self.shape == "box":
            return f"mask(box, size={self.min_size:g}-{self.max_size:g})"
        return f"mask(strokes={self.strokes}, width={self.width:g})"

    def draw(self, n, shape, generator):
        _, h, w = shape
        dev = generator.device
        if self.shape == "box":
            u = torch.rand(n, 4, generator=generator, device=dev)  # height, width, top, left fractions
            bh = (self.min_size + u[:, 0] * (self.max_size - self.min_size)) * h
            bw = (self.min_size + u[:, 1] * (self.max_size - self.min_size)) * w
            top, left = u[:, 2] * (h - bh), u[:, 3] * (w - bw)
            rows = torch.arange(h, device=dev).view(1, h, 1) + 0.5
            cols = torch.arange(w, device=dev).view(1, 1, w) + 0.5
            inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + bh).view(-1, 1, 1))
                      & (cols >= left.view(-1, 1, 1)) & (cols < (left + bw).view(-1, 1, 1)))
            return inside.float().unsqueeze(1)  # (n, 1, H, W), 1 = missing
        # Strokes: each a line segment between two random points, thickened to the brush width.
        ends = torch.rand(n, self.strokes, 4, generator=generator, device=dev)  # y0, x0, y1, x1 in [0, 1)
        ys = (torch.arange(h, device=dev).float() + 0.5) / h
        xs = (torch.arange(w, device=dev).float() + 0.5) / w
        py, px = ys.view(1, 1, h, 1), xs.view(1, 1, 1, w)
        y0, x0, y1, x1 = (ends[..., i].view(n, self.strokes, 1, 1) for i in range(4))
        dy, dx = y1 - y0, x1 - x0
        t = (((py - y0) * dy + (px - x0) * dx) / (dy * dy + dx * dx).clamp_min(1e-8)).clamp(0, 1)
        dist = torch.sqrt((py - (y0 + t * dy)) ** 2 + (px - (x0 + t * dx)) ** 2)  # to the nearest point of the segment
        return (dist <= self.width / 2).any(dim=1, keepdim=True).float()  # (n, 1, H, W)

    def apply(self, x, r):
        if r is None:
            raise ValueError("mask.apply needs the mask drawn by mask.draw")
        m = r.to(x.dtype)
        return torch.cat([x * (1 - m) + FILL * m, m], dim=1)

    def given(self, x, masks):
        """Images with holes, and their masks (white = missing)."""
        if masks is None:
            raise ConfigError("an inpainting model needs to know which pixels are missing: give a mask per image "
                              "(white = missing; --mask FILE_OR_FOLDER), or --degrade to cut its own random holes")
        m = torch.from_numpy(np.array(masks, dtype=np.float32))
        if m.shape != (len(x), *x.shape[-2:]):
            raise ConfigError(f"masks of shape {tuple(m.shape)} do not fit images of shape {tuple(x.shape)}: give "
                              "one (H, W) mask per image, of the image's size")
        return self.apply(x, (m >= 128).float().unsqueeze(1))  # greys of a JPEG or an antialiased edge: not missing


@dataclass
class Noise(Degradation):
    sigma: float = 0.2  # standard deviation in model units (pixel range [-1, 1]): 0.2 is about 25 grey levels
    name = "noise"
    baseline = "the noisy images"

    def __post_init__(self):
        if not self.sigma > 0:
            raise ConfigError(f"data.degrade_options.sigma must be > 0, got {self.sigma}")

    def spec(self) -> str:
        return f"noise(sigma={self.sigma:g})"

    def draw(self, n, shape, generator):
        return torch.randn((n, *shape), generator=generator, device=generator.device)

    def apply(self, x, r):
        if r is None:
            raise ValueError("noise.apply needs the noise drawn by noise.draw")
        return (x + self.sigma * r.to(x.dtype)).clamp_(-1.0, 1.0)


@DEGRADATIONS.register("downsample", help="bicubic down by factor 2, 4 or 8, then bicubic back up (super-resolution)")
def _downsample(factor: int = 4) -> Downsample:
    if factor not in (2, 4, 8):
        raise ConfigError(f"data.degrade_options.factor must be 2, 4 or 8, got {factor}")
    return Downsample(factor)


@DEGRADATIONS.register("mask", help="random rectangles or strokes set to grey, the mask as an extra channel (inpainting)")
def _mask(shape: str = "box", min_size: float = 0.25, max_size: float = 0.5, strokes: int = 3,
          width: float = 0.12) -> Mask:
    return Mask(shape, min_size, max_size, strokes, width)


@DEGRADATIONS.register("noise", help="additive Gaussian noise of a set level (denoising)")
def _noise(sigma: float = 0.2) -> Noise:
    return Noise(sigma)


@dataclass
class PairedDataset:
    """An image dataset seen as (input, target) pairs: the target is the image, the input its
    degradation. Behaves as the image dataset (x, shape, len, ...) and adds `degradation`,
    `cond_shape` and the fixed inputs `inputs(idx, seed)`."""

    base: object  # the ArrayDataset of the images
    degradation: Degradation
    evaluator: str = "restoration"
    plot: str = "grid"
    finite: bool = field(default=True, init=False)
    n_classes = 0  # the input image is the condition; class labels are not used
    y = None

    def __post_init__(self):
        if not getattr(self.base, "is_image", False) or not self.base.finite:
            raise ConfigError(f"data.degrade makes image-to-image pairs, and dataset {self.base.name!r} does not "
                              "hold images; use an image dataset (fashion-mnist, mnist, cifar10, image-folder)")
        self.degradation.check_size(*self.base.shape[1:])

    # The image dataset's own description.
    name = property(lambda self: self.base.name)
    x = property(lambda self: self.base.x)
    class_names = property(lambda self: None)
    feature_net = property(lambda self: self.base.feature_net)
    is_image = property(lambda self: True)
    shape = property(lambda self: self.base.shape)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def cond_shape(self) -> tuple[int, int, int]:
        """Shape of one input (C + extra, H, W)."""
        c, h, w = self.base.shape
        return (c + self.degradation.extra, h, w)

    def iter_inputs(self, idx: torch.Tensor, seed: int, chunk: int = 500):
        """The fixed inputs of the images at idx, `chunk` at a time (float32 (<= chunk, *cond_shape)):
        their randomness drawn in order from one generator seeded with `seed`, so the same (idx, seed)
        always gives the same inputs."""
        gen = torch.Generator().manual_seed(seed)
        for i in range(0, len(idx), chunk):
            yield self.degradation(to_model_range(self.base.x[idx[i:i + chunk]]), gen)

    def inputs(self, idx: torch.Tensor, seed: int) -> torch.Tensor:
        """All the fixed inputs (len(idx), *cond_shape) of `iter_inputs` at once."""
        parts = list(self.iter_inputs(idx, seed))
        return torch.cat(parts) if parts else torch.empty((0, *self.cond_shape))

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets (B, C, H, W) in [-1, 1] and their inputs (B, *cond_shape): D's held-out report reads
        these. The randomness is seeded by the indices, so a batch is the same pair at every call."""
        seed = int(idx[0]) * 1_000_003 + len(idx) if len(idx) else 0
        return to_model_range(self.base.x[idx]), self.inputs(idx, seed)


def degrade_name(cfg) -> str:
    """The run's degradation name as the registry spells it ("none" for noise-to-image runs)."""
    return cfg.data.degrade.strip().lower() or "none"
