"""Mode statistics for 2-D mixtures (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018).

A generated sample is *high quality* when it lies within 3 standard deviations of its nearest
mode; a mode is *captured* when it is the nearest mode of at least one high-quality sample.
The reverse KL is KL(generated mode histogram || uniform) over the high-quality samples.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def mode_stats(samples: np.ndarray, modes: np.ndarray, std: float, n_sigma: float = 3.0) -> dict:
    """samples (N, 2), modes (K, 2), std of each mode -> {modes_captured, high_quality, reverse_kl, counts}.

    reverse_kl is computed on the histogram of high-quality samples over the K modes (empty
    bins contribute 0, as p log p -> 0); it is 0 for a perfectly balanced histogram and log K
    when every sample falls on one mode.
    """
    samples = np.asarray(samples, dtype=np.float64)
    modes = np.asarray(modes, dtype=np.float64)
    if modes.ndim != 2 or modes.shape[0] < 1:
        raise ConfigError(f"mode_stats: expected modes (K, D), got shape {modes.shape}")
    if samples.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ConfigError(f"mode_stats: expected samples (N, {modes.shape[1]}) like the modes, got shape {samples.shape}")
    if not (np.isfinite(samples).all() and np.isfinite(modes).all()):
        raise ConfigError("mode_stats: samples or modes contain NaN or inf")
    if not std > 0:
        raise ConfigError(f"mode_stats: std must be > 0, got {std}")
    d2 = ((samples[:, None, :] - modes[None, :, :]) ** 2).sum(-1)  # (N, K)
    nearest = d2.argmin(1)
    dist = np.sqrt(d2[np.arange(len(samples)), nearest])
    good = dist <= n_sigma * std
    counts = np.bincount(nearest[good], minlength=len(modes))
    n_good = int(good.sum())
    if n_good:
        p = counts / n_good
        nz = p > 0
        reverse_kl = float((p[nz] * np.log(p[nz] * len(modes))).sum())
    else:
        reverse_kl = float("inf")
    return {
        "modes_captured": int((counts > 0).sum()),
        "high_quality": n_good / max(1, len(samples)),
        "reverse_kl": reverse_kl,
        "counts": counts.tolist(),
    }
