"""Helpers for the NumPy engine's checks: central finite differences, torch mirrors, the
relative-error measure the issue states (1e-6 in float64)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ganland.numpy_gan import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh

TOL = 1e-6  # relative agreement required in float64


def rel_err(a, b) -> float:
    """max |a - b| / max(max |a|, max |b|): scale-free, and 0 when both are exactly 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(a).max(), np.abs(b).max())
    return float(np.abs(a - b).max() / scale) if scale > 0 else 0.0


def central_diff(f: Callable[[], float], arr: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d arr by central differences, perturbing `arr` in place one entry at a time."""
    grad = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        up = f()
        flat[i] = keep - h
        down = f()
        flat[i] = keep
        gflat[i] = (up - down) / (2 * h)
    return grad


def to_torch(net: Sequential) -> torch.nn.Sequential:
    """The same network in torch, float64, with copies of the NumPy weights (W (in, out) -> weight (out, in))."""
    mods = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            n_in, n_out = layer.W.data.shape
            lin = torch.nn.Linear(n_in, n_out).double()
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.W.data.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.b.data[0].copy()))
            mods.append(lin)
        elif isinstance(layer, ReLU):
            mods.append(torch.nn.ReLU())
        elif isinstance(layer, LeakyReLU):
            mods.append(torch.nn.LeakyReLU(layer.slope))
        elif isinstance(layer, Tanh):
            mods.append(torch.nn.Tanh())
        elif isinstance(layer, Sigmoid):
            mods.append(torch.nn.Sigmoid())
        else:
            raise TypeError(layer)
    return torch.nn.Sequential(*mods)


def torch_grads(net: Sequential, tnet: torch.nn.Sequential) -> dict[str, np.ndarray]:
    """The torch network's parameter gradients under the NumPy network's names and shapes."""
    out = {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            out[f"{i}.W"] = tnet[i].weight.grad.numpy().T
            out[f"{i}.b"] = tnet[i].bias.grad.numpy()[None, :]
    return out


def away_from_kinks(x: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Move entries within `margin` of 0 out to ±margin, so finite differences never cross a
    ReLU kink."""
    x = x.copy()
    small = np.abs(x) < margin
    x[small] = np.where(x[small] >= 0, margin, -margin)
    return x
