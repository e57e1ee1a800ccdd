"""SGD and Adam with torch's update rules, gradient-norm clipping and weight clipping.

Every function updates `Parameter.data` in place (views into it stay valid). The trainer hands
each optimizer the network's one flat Parameter (`Sequential.flat`), so a step is a handful of
NumPy calls whatever the number of layers.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..registry import Registry
from .layers import Parameter

OPTIMIZERS: Registry = Registry("NumPy optimizer")


def _check_lr(name: str, lr: float) -> None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"{name}: the learning rate must be a number > 0, got {lr!r} (seed 002 uses 0.01)")


@OPTIMIZERS.register("sgd", help="plain SGD (seed 002), optional momentum as torch.optim.SGD")
class SGD:
    """p <- p - lr * g, or with momentum m: buf <- m * buf + g, p <- p - lr * buf (torch's SGD,
    dampening 0, no Nesterov, no weight decay)."""

    def __init__(self, params: list[Parameter], lr: float = 0.01, momentum: float = 0.0):
        _check_lr("SGD", lr)
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"SGD: momentum must lie in [0, 1), got {momentum!r}")
        self.params, self.lr, self.momentum = list(params), float(lr), float(momentum)
        self.buffers = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if self.momentum == 0.0:
                p.data -= self.lr * p.grad
                continue
            if self.buffers[i] is None:  # torch starts the buffer at the first gradient
                self.buffers[i] = p.grad.copy()
            else:
                self.buffers[i] *= self.momentum
                self.buffers[i] += p.grad
            p.data -= self.lr * self.buffers[i]


@OPTIMIZERS.register("adam", help="Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam")
class Adam:
    """m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
    p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (torch's arrangement)."""

    def __init__(self, params: list[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        _check_lr("Adam", lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ConfigError(f"Adam: betas must lie in [0, 1), got {betas!r} (common: (0.5, 0.999))")
        if not eps > 0:
            raise ConfigError(f"Adam: eps must be > 0, got {eps!r}")
        self.params, self.lr, self.betas, self.eps = list(params), float(lr), (float(b1), float(b2)), float(eps)
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1.0 - b1 ** self.t)
        root_bc2 = math.sqrt(1.0 - b2 ** self.t)
        for p, m, v in zip(self.params, self.m, self.v):
            m *= b1
            m += (1.0 - b1) * p.grad
            v *= b2
            v += (1.0 - b2) * (p.grad * p.grad)
            denom = np.sqrt(v)
            denom /= root_bc2
            denom += self.eps
            p.data -= step_size * (m / denom)


def clip_grad_norms(params: list[Parameter], max_norm: float) -> list[float]:
    """Rescale each parameter's gradient on its own to an L2 norm of at most max_norm (seed 002:
    `if norm(d_w) > GRADIENT_CLIP: d_w *= GRADIENT_CLIP / norm(d_w)`). Returns the norms before."""
    norms = []
    for p in params:
        g = p.grad.reshape(-1)
        norm = math.sqrt(float(np.dot(g, g)))
        if norm > max_norm:
            p.grad *= max_norm / norm
        norms.append(norm)
    return norms


class PackedNormClipper:
    """`clip_grad_norms` for tensors packed in one buffer (`layers.pack`), in four NumPy calls
    while no tensor is over the limit: the squared norms of all tensors come from one reduceat.

    params: the packed tensors in buffer order (Sequential.parameters()); clip: which of them
    to clip (the seed: weight matrices only).
    """

    def __init__(self, flat: Parameter, params: list[Parameter], clip: list[bool], max_norm: float):
        sizes = [p.data.size for p in params]
        if sum(sizes) != flat.data.size or len(clip) != len(params):
            raise ConfigError("PackedNormClipper: params must be exactly the tensors packed into flat, in order, "
                              "with one clip flag each")
        self.flat, self.params, self.max_norm = flat, list(params), float(max_norm)
        self.starts = np.cumsum([0] + sizes[:-1])  # (T,) where each tensor begins in the buffer
        self.limit_sq = np.array([max_norm ** 2 if c else np.inf for c in clip])  # (T,) inf: never clipped

    def __call__(self) -> np.ndarray:
        """Clip in place -> (T,) squared gradient norms before clipping."""
        g = self.flat.grad
        sq = np.add.reduceat(g * g, self.starts)  # (T,)
        over = sq > self.limit_sq
        if over.any():
            for i in np.flatnonzero(over):
                self.params[i].grad *= self.max_norm / math.sqrt(sq[i])
        return sq


def clip_weights(params: list[Parameter], bound: float) -> None:
    """Clamp every entry of each parameter to [-bound, bound] in place (seed 002: WEIGHT_CLIP)."""
    for p in params:
        np.maximum(p.data, -bound, out=p.data)  # two ufuncs: np.clip's wrapper costs more at N = 1
        np.minimum(p.data, bound, out=p.data)
