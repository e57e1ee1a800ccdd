"""Distortion metrics of restored images against their ground truth: PSNR and SSIM.

Both read uint8 images (N, H, W, C) on the 0..255 scale (L = 255) and return the mean over images
(and, for SSIM, over channels and window positions), the way restoration papers report them.

- PSNR = 10 log10(L^2 / MSE), per image; an exact copy (MSE 0) counts as MSE 1e-10 (148 dB) so
  the mean stays finite.
- SSIM (Wang, Bovik, Sheikh & Simoncelli 2004): a Gaussian window of 11 px and sigma 1.5,
  K1 = 0.01, K2 = 0.03, the local statistics weighted by the window (population, not sample,
  covariances), evaluated where the window fits inside the image (no padding), per channel.
  Images smaller than the window use a window of their smaller side (sigma scaled alike).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError

L = 255.0
K1, K2 = 0.01, 0.03
WINDOW, SIGMA = 11, 1.5


def _pair(a: np.ndarray, b: np.ndarray, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 or float image arrays (N, H, W[, C]) of one shape -> float64 tensors (N, C, H, W)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 3:
        a, b = a[..., None], (b[..., None] if b.ndim == 3 else b)
    if a.shape != b.shape or a.ndim != 4:
        raise ConfigError(f"{name} compares images of one shape (N, H, W[, C]); got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ConfigError(f"{name} needs at least one image")
    ta = torch.from_numpy(np.array(a, dtype=np.float64)).permute(0, 3, 1, 2)  # a copy: any strides in
    tb = torch.from_numpy(np.array(b, dtype=np.float64)).permute(0, 3, 1, 2)
    return ta, tb


def psnr_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR in dB (N,) of images a against b, pixel values on the 0..255 scale."""
    x, y = _pair(a, b, "psnr")
    mse = (x - y).pow(2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return (10.0 * torch.log10(L * L / mse)).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The mean PSNR (dB) of images a against b."""
    return float(psnr_per_image(a, b).mean())


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """A normalised 2-D Gaussian (size, size), float64."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_per_image(a: np.ndarray, b: np.ndarray, window: int = WINDOW, sigma: float = SIGMA,
                   chunk: int = 256) -> np.ndarray:
    """SSIM (N,) of images a against b (0..255 scale), the mean of the SSIM map over channels and
    positions; `chunk` images at a time (float64 maps of large images are big)."""
    if np.shape(a) != np.shape(b):
        raise ConfigError(f"ssim compares images of one shape (N, H, W[, C]); got {np.shape(a)} and {np.shape(b)}")
    if len(a) == 0:
        raise ConfigError("ssim needs at least one image")
    return np.concatenate([_ssim(a[i:i + chunk], b[i:i + chunk], window, sigma) for i in range(0, len(a), chunk)])


def _ssim(a: np.ndarray, b: np.ndarray, window: int, sigma: float) -> np.ndarray:
    x, y = _pair(a, b, "ssim")
    side = min(x.shape[-2:])
    if side < window:  # a window of the image's own size (e.g. 7 px inputs)
        sigma, window = sigma * side / window, side
    c = x.shape[1]
    w = gaussian_window(window, sigma).expand(c, 1, window, window).contiguous()
    local = lambda t: F.conv2d(t, w, groups=c)  # noqa: E731  (weighted local means, valid positions)
    mx, my = local(x), local(y)
    vx = local(x * x) - mx * mx
    vy = local(y * y) - my * my
    cxy = local(x * y) - mx * my
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return m.flatten(1).mean(dim=1).numpy()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """The mean SSIM of images a against b."""
    return float(ssim_per_image(a, b).mean())

