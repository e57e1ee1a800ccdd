"""Feature networks: images -> features (and class probabilities) for the metrics.

A `FeatureExtractor` wraps one network with the exact preprocessing it expects. Images come in
as uint8 arrays (N, H, W, C) (the layout of `ganland sample` files) or torch uint8 (N, C, H, W);
features come out as float64 numpy (N, F) and, for networks with a classifier head, class
probabilities (N, K). Every extractor carries the SHA-256 of its weights: it is part of the
protocol recorded with every score.

Registered extractors (FEATURE_NETS):
  fashion-mnist-cnn, mnist-cnn   small CNN classifiers shipped with ganland (metrics/weights/)
  inception-v3-fid               the Inception-v3 of the reference FID code, from a local
                                 weights file the user provides
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry


@dataclass
class FeatureExtractor:
    name: str  # registry name, e.g. "fashion-mnist-cnn"
    sha256: str  # SHA-256 of the weights file the network was loaded from
    module: nn.Module  # forward(x) -> (features (N, F), logits (N, K) or None), x from `preprocess`
    preprocess: Callable[[torch.Tensor], torch.Tensor]  # uint8 (N, C, H, W) -> the network's input
    feature_dim: int  # F
    n_classes: int  # K; 0 when the network has no classifier head
    class_names: Optional[list[str]] = None

    @torch.no_grad()
    def extract(self, images, batch_size: int = 500, device: str | torch.device = "cpu", progress: str = ""):
        """Features (N, F) float64 and class probabilities (N, K) float64 (or None).

        images: uint8 numpy (N, H, W, C) or (N, H, W), or uint8 torch (N, C, H, W). The result does
        not depend on `batch_size` (the networks run in eval mode, sample by sample).
        progress: a label for a progress bar on stderr (drawn only on a terminal); "" = none.
        """
        x = as_nchw_uint8(images)
        self.module.eval().to(device)
        feats, probs = [], []
        starts = range(0, len(x), batch_size)
        if progress:
            import sys

            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=progress, unit="batch", leave=False, disable=not sys.stderr.isatty())
        for i in starts:
            f, logits = self.module(self.preprocess(x[i:i + batch_size].to(device)))
            feats.append(f.double().cpu())
            if logits is not None:
                probs.append(torch.softmax(logits.double(), dim=1).cpu())
        features = torch.cat(feats).numpy() if feats else np.zeros((0, self.feature_dim))
        if probs:
            return features, torch.cat(probs).numpy()
        return features, (np.zeros((0, self.n_classes)) if self.n_classes and not len(x) else None)


def as_nchw_uint8(images) -> torch.Tensor:
    """uint8 images as torch (N, C, H, W). Accepts numpy (N, H, W), (N, H, W, C) or torch (N, C, H, W);
    float arrays in [0, 1] or [-1, 1] are not accepted here (convert them with `to_uint8_images`)."""
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ConfigError(f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        return images
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ConfigError(f"expected uint8 images, got {arr.dtype}; convert with ganland.metrics.to_uint8_images")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ConfigError(f"expected images (N, H, W[, C]), got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


def to_uint8_images(images: np.ndarray) -> np.ndarray:
    """Any image array (N, H, W[, C]) as uint8 (N, H, W, C): uint8 kept; floats in [0, 1] or [-1, 1]
    (detected from their range) scaled to [0, 255] and rounded."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ConfigError(f"images must have shape (N, H, W) or (N, H, W, C) with C = 1 or 3; got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"images of dtype {arr.dtype} are not supported; use uint8 or float")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ConfigError("images contain NaN or infinite values")
    lo, hi = arr.min(), arr.max()
    if lo >= -1.0 - 1e-6 and hi <= 1.0 + 1e-6 and lo < -1e-6:
        arr = (arr + 1.0) * 127.5  # [-1, 1]
    elif lo >= -1e-6 and hi <= 1.0 + 1e-6:
        arr = arr * 255.0  # [0, 1]
    elif lo >= 0 and hi <= 255:
        pass  # already pixel values stored as float or wider ints
    else:
        raise ConfigError(f"cannot tell the range of float images spanning [{lo:.3g}, {hi:.3g}]; "
                          "give uint8, or floats in [0, 1] or [-1, 1]")
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


# name -> loader(weights: Optional[str] = None) -> FeatureExtractor
FEATURE_NETS: Registry = Registry("feature network")
# Each dataset names the feature network it is judged with (`ArrayDataset.feature_net`).
