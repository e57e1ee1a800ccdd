"""Binary cross-entropy on D's probabilities (with the seed's clamping) and the G losses.

Seed 002's `LossFunc` clamps D's output p to [1e-7, 1 - 1e-7] before taking logs, so a
saturated D never produces log(0). Here the loss is the mean over the batch of

    bce(p, t) = -(t log c(p) + (1 - t) log(1 - c(p))),   c(p) = clip(p, 1e-7, 1 - 1e-7),

and `bce_grad` is its exact derivative: ((1 - t) / (1 - c) - t / c) / N where p lies inside the
clamp range, and 0 where the clamp is active (a clamped value does not move with p; torch's
autograd of the same expression agrees). With weight clipping 0.25 D's logit stays within about
±18, so in float64 the clamp is never active in practice (sigmoid(±16.1) is where it would be).
"""
from __future__ import annotations

import numpy as np

from ..registry import Registry

EPS = 1e-7  # seed 002's clamp: probabilities are clipped to [EPS, 1 - EPS] before the logs


def _clamped(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-> (c, inside): c = clip(p, EPS, 1 - EPS) and the mask where the clamp is not active."""
    lo, hi = p.dtype.type(EPS), p.dtype.type(1.0 - EPS)  # 1 - 1e-7 rounds to 1 - 1.19e-7 in float32
    c = np.minimum(np.maximum(p, lo), hi)  # (ufuncs: np.clip's Python wrapper costs more at N = 1)
    return c, c == p


def bce_with_grad(p: np.ndarray, target) -> tuple[float, np.ndarray]:
    """(bce(p, target), bce_grad(p, target)) sharing one clamp: p (N, 1), target scalar or (N, 1)."""
    c, inside = _clamped(p)
    n = p.shape[0]
    if isinstance(target, (int, float)) and target in (0, 1):  # the labels of a GAN: half the NumPy calls
        if target == 1:
            loss = -float(np.add.reduce(np.log(c), axis=None)) / n  # -mean log c
            grad = np.divide(-1.0 / n, c)  # -1 / (n c)
        else:
            loss = -float(np.add.reduce(np.log1p(-c), axis=None)) / n  # -mean log(1 - c)
            grad = np.divide(1.0 / n, 1 - c)  # 1 / (n (1 - c))
        grad *= inside
        return loss, grad
    terms = target * np.log(c) + (1 - target) * np.log1p(-c)  # (N, 1)
    loss = -float(np.add.reduce(terms, axis=None)) / n
    grad = (1 - target) / (1 - c) - target / c  # (N, 1)
    grad *= inside
    grad /= n
    return loss, grad.astype(p.dtype, copy=False)


def bce(p: np.ndarray, target) -> float:
    """Mean binary cross-entropy of probabilities p (N, 1) against target (scalar or (N, 1))."""
    return bce_with_grad(p, target)[0]


def bce_grad(p: np.ndarray, target) -> np.ndarray:
    """d bce / d p, (N, 1): ((1 - t) / (1 - c) - t / c) / N inside the clamp range, 0 outside."""
    return bce_with_grad(p, target)[1]


# G losses: g_loss(p_fake (N, 1)) -> (loss value, d loss / d p_fake (N, 1)); G minimises the loss.
G_LOSSES: Registry = Registry("NumPy G loss")


@G_LOSSES.register("non-saturating", help="-log D(G(z)): the seed's choice (BCE against the real label)")
def g_non_saturating(p_fake: np.ndarray) -> tuple[float, np.ndarray]:
    """L_G = mean -log D(G(z)) = bce(p_fake, 1): strong gradients while D rejects the fakes."""
    return bce_with_grad(p_fake, 1.0)


@G_LOSSES.register("minimax", help="log(1 - D(G(z))): Goodfellow et al.'s saturating minimax loss")
def g_minimax(p_fake: np.ndarray) -> tuple[float, np.ndarray]:
    """L_G = mean log(1 - D(G(z))) = -bce(p_fake, 0): vanishing gradients while D rejects the fakes."""
    loss, grad = bce_with_grad(p_fake, 0.0)
    return -loss, -grad
