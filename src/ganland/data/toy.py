"""Toy distributions drawn fresh for every batch: a 1-D normal, sine signals, 2-D mixtures.

Every draw uses only the torch.Generator it is given (CPU) and is vectorised over samples.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError
from .base import DATASETS, SamplerDataset
from .sources import check_split

# Seed 002's real sine samples: signal_i = mult * sin(x0 + freq * i).
SINE_X0 = (0.0, 1.0)  # phase range, radians
SINE_FREQ = (1.2, 1.5)  # angular step per point, radians
SINE_MULT = (0.5, 0.8)  # amplitude range


def _positive(name: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ConfigError(f"{name}: {key} must be > 0, got {value!r}")


def _uniform(lo_hi: tuple[float, float], u: torch.Tensor) -> torch.Tensor:
    """Map U(0, 1) draws to U(lo, hi)."""
    lo, hi = lo_hi
    return lo + (hi - lo) * u


@DATASETS.register("gaussian-1d")
def build_gaussian_1d(
    split: str = "train",  # ignored: every draw is fresh (the trainer seeds the test stream apart)
    mean: float = 10.0,  # mean of the normal (seed 003)
    std: float = 0.1,  # standard deviation of the normal (seed 003); must be > 0
) -> SamplerDataset:
    """1-D normal N(mean, std), seed 003's target distribution."""
    check_split("gaussian-1d", split)
    _positive("gaussian-1d", std=std)

    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        return mean + std * torch.randn((n, 1), generator=generator, dtype=torch.float32)  # (n, 1)

    def density(x: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2.0 * math.pi))

    return SamplerDataset(
        name="gaussian-1d", dim=1, draw_fn=draw, plot="hist", evaluator="normal-1d",
        target={"mean": mean, "std": std}, density=density,
    )


@DATASETS.register("sine")
def build_sine(
    split: str = "train",  # ignored: every draw is fresh
    n_points: int = 10,  # points per signal, i = 0 .. n_points - 1 (seed 002: 10)
) -> SamplerDataset:
    """Sine signals mult*sin(x0 + freq*i), x0~U(0,1), freq~U(1.2,1.5), mult~U(0.5,0.8) (seed 002)."""
    check_split("sine", split)
    _positive("sine", n_points=n_points)
    steps = torch.arange(n_points, dtype=torch.float32)  # (n_points,)

    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand((n, 3, 1), generator=generator, dtype=torch.float32)
        x0, freq, mult = _uniform(SINE_X0, u[:, 0]), _uniform(SINE_FREQ, u[:, 1]), _uniform(SINE_MULT, u[:, 2])
        return mult * torch.sin(x0 + freq * steps)  # (n, 1) with (n_points,) -> (n, n_points)

    target = {"x0": SINE_X0, "freq": SINE_FREQ, "mult": SINE_MULT, "n_points": n_points}
    return SamplerDataset(name="sine", dim=n_points, draw_fn=draw, plot="curves", evaluator="sine", target=target)


def ring_modes(n_modes: int = 8, radius: float = 1.0) -> np.ndarray:
    """(n_modes, 2) points radius*(cos 2πk/n, sin 2πk/n), k = 0..n-1: n distinct angles."""
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes  # never linspace(0, 2π, n): it repeats 0 = 2π
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_modes(n_per_side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """(n_per_side², 2) points of a square grid centred on 0, e.g. {-4,-2,0,2,4}² for 5 and 2."""
    axis = spacing * (np.arange(n_per_side) - (n_per_side - 1) / 2.0)
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def gaussian_mixture(name: str, modes: np.ndarray, std: float) -> SamplerDataset:
    """Equally weighted isotropic Gaussians with means `modes` (K, 2) and one `std`."""
    _positive(name, std=std)
    centres = torch.as_tensor(modes, dtype=torch.float32)  # (K, 2)

    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        k = torch.randint(len(centres), (n,), generator=generator)  # (n,) mode of each sample
        return centres[k] + std * torch.randn((n, 2), generator=generator, dtype=torch.float32)

    return SamplerDataset(name=name, dim=2, draw_fn=draw, plot="scatter", evaluator="mixture",
                          target={"modes": modes, "std": std})


@DATASETS.register("ring")
def build_ring(
    split: str = "train",  # ignored: every draw is fresh
    n_modes: int = 8,  # Gaussians on the circle (PacGAN: 8)
    radius: float = 1.0,  # circle radius (PacGAN: 1)
    std: float = 0.01,  # standard deviation of each Gaussian (PacGAN: 0.01)
) -> SamplerDataset:
    """2-D ring: 8 equally weighted Gaussians on the unit circle, std 0.01 (PacGAN)."""
    check_split("ring", split)
    _positive("ring", n_modes=n_modes, radius=radius)
    return gaussian_mixture("ring", ring_modes(n_modes, radius), std)


@DATASETS.register("grid")
def build_grid(
    split: str = "train",  # ignored: every draw is fresh
    n_per_side: int = 5,  # Gaussians per grid row (PacGAN: 5, so 25 in all)
    spacing: float = 2.0,  # distance between neighbouring means (PacGAN: 2, means in {-4,-2,0,2,4}²)
    std: float = 0.05,  # standard deviation of each Gaussian (PacGAN: 0.05)
) -> SamplerDataset:
    """2-D grid: 25 equally weighted Gaussians on {-4,-2,0,2,4}², std 0.05 (PacGAN)."""
    check_split("grid", split)
    _positive("grid", n_per_side=n_per_side, spacing=spacing)
    return gaussian_mixture("grid", grid_modes(n_per_side, spacing), std)


@DATASETS.register("swiss-roll")
def build_swiss_roll(
    split: str = "train",  # ignored: every draw is fresh
    scale: float = 5.0,  # the roll (t cos t, t sin t) is divided by this; 5 puts it within about ±2.8
    noise: float = 0.05,  # standard deviation of the Gaussian noise added after scaling; 0: none
) -> SamplerDataset:
    """2-D swiss roll: t ~ U(1.5π, 4.5π), x = (t cos t, t sin t) / scale + N(0, noise²)."""
    check_split("swiss-roll", split)
    _positive("swiss-roll", scale=scale)
    if noise < 0:
        raise ConfigError(f"swiss-roll: noise must be >= 0, got {noise!r}")

    def draw(n: int, generator: torch.Generator) -> torch.Tensor:
        t = _uniform((1.5 * math.pi, 4.5 * math.pi), torch.rand((n, 1), generator=generator, dtype=torch.float32))
        roll = torch.cat([t * torch.cos(t), t * torch.sin(t)], dim=1) / scale  # (n, 2)
        return roll + noise * torch.randn((n, 2), generator=generator, dtype=torch.float32)

    # No closed-form metric: scored against fresh draws of the roll itself (energy distance, PRDC).
    return SamplerDataset(name="swiss-roll", dim=2, draw_fn=draw, plot="scatter", evaluator="two-sample", target={})
