"""Seed 002's networks and its three-step training iteration, with correct gradients.

G: z (N, 1) -> Dense 10, ReLU -> Dense 10, ReLU -> Dense 10, Tanh -> x (N, 10)
D: x (N, 10) -> Dense 10, LeakyReLU 0.2 -> Dense 10, LeakyReLU 0.2 -> Dense 1, Sigmoid -> p (N, 1)

One iteration (`NumpyGAN.train_step`), as the seed orders it:
  1. D step on real samples:  minimise bce(D(x), 1)
  2. D step on fake samples:  minimise bce(D(G(z)), 0)            (G is not updated)
  3. G step through D:        minimise g_loss(D(G(z))), the same fakes, scored by the updated D;
                              D's backward pass only carries the gradient to x, D is not updated.
Each update: per-tensor gradient-norm clipping, the optimizer step, then weight clipping.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .layers import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh, as_dtype
from .losses import G_LOSSES, bce_with_grad
from .optim import PackedNormClipper, clip_weights


def build_generator(rng: np.random.Generator, z_dim: int = 1, hidden: int = 10, x_dim: int = 10,
                    dtype="float64") -> Sequential:
    """Seed 002's G, z (N, z_dim) -> x (N, x_dim) in (-1, 1), with the seed's uniform init."""
    dt = as_dtype(dtype)
    return Sequential([
        Dense.seed_uniform(z_dim, hidden, rng, dt), ReLU(),
        Dense.seed_uniform(hidden, hidden, rng, dt), ReLU(),
        Dense.seed_uniform(hidden, x_dim, rng, dt), Tanh(),
    ])


def build_discriminator(rng: np.random.Generator, x_dim: int = 10, hidden: int = 10, slope: float = 0.2,
                        dtype="float64") -> Sequential:
    """Seed 002's D, x (N, x_dim) -> probability of "real" (N, 1), with the seed's uniform init."""
    dt = as_dtype(dtype)
    return Sequential([
        Dense.seed_uniform(x_dim, hidden, rng, dt), LeakyReLU(slope),
        Dense.seed_uniform(hidden, hidden, rng, dt), LeakyReLU(slope),
        Dense.seed_uniform(hidden, 1, rng, dt), Sigmoid(),
    ])


class NumpyGAN:
    """G, D, their optimizers (each built on the network's flat Parameter) and the seed's iteration.

    grad_clip: max L2 norm of each clipped gradient tensor (None: no clipping); like the seed,
    only weight matrices are clipped unless clip_bias_grads. weight_clip: every parameter, biases
    included, is clamped to [-weight_clip, weight_clip] after each step (None: no clamping).
    """

    def __init__(self, G: Sequential, D: Sequential, opt_G, opt_D, g_loss: str = "non-saturating",
                 grad_clip: float | None = 0.2, clip_bias_grads: bool = False, weight_clip: float | None = 0.25):
        for name, value in (("grad_clip", grad_clip), ("weight_clip", weight_clip)):
            if value is not None and not value > 0:
                raise ConfigError(f"NumpyGAN: {name} must be > 0 or None (no clipping), got {value!r}")
        self.G, self.D, self.opt_G, self.opt_D = G, D, opt_G, opt_D
        self.g_loss_name = g_loss
        self.g_loss = G_LOSSES.get(g_loss)
        self.grad_clip, self.weight_clip = grad_clip, weight_clip
        self.clip_bias_grads = clip_bias_grads
        self._clip_G = self._clipper(G, clip_bias_grads)
        self._clip_D = self._clipper(D, clip_bias_grads)
        self.x_fake: np.ndarray | None = None

    def _clipper(self, net: Sequential, clip_bias_grads: bool) -> PackedNormClipper | None:
        if self.grad_clip is None:
            return None
        params = net.parameters()
        return PackedNormClipper(net.flat, params, [clip_bias_grads or not p.is_bias for p in params], self.grad_clip)

    def _update(self, net: Sequential, opt, clipper: PackedNormClipper | None) -> None:
        if clipper is not None:
            clipper()
        opt.step()
        if self.weight_clip is not None:
            clip_weights([net.flat], self.weight_clip)

    def d_backward(self, x: np.ndarray, target: float) -> tuple[float, float]:
        """D's gradients of bce(D(x), target) into D's Parameter.grad, no update: x (N, x_dim),
        target 1 (real) or 0 (fake) -> (bce loss, mean D(x))."""
        p = self.D.forward(x)  # (N, 1)
        loss, grad_p = bce_with_grad(p, target)
        self.D.backward(grad_p, input_grad=False)
        return loss, _mean(p)

    def g_backward(self) -> tuple[float, float]:
        """G's gradients of g_loss(D(G(z))) into G's Parameter.grad for the fakes of the last
        `generate` call (G's caches are still theirs), no update; D's parameter gradients are
        left as they were -> (G loss, mean D(G(z)))."""
        p = self.D.forward(self.x_fake)  # (N, 1)
        loss, grad_p = self.g_loss(p)
        grad_x = self.D.backward(grad_p, param_grads=False)  # (N, x_dim): only the input gradient
        self.G.backward(grad_x, input_grad=False)
        return loss, _mean(p)

    def d_step(self, x: np.ndarray, target: float) -> tuple[float, float]:
        """One D update on samples x (N, x_dim) with label target (1 real, 0 fake) ->
        (bce loss, mean D(x)) before the update."""
        out = self.d_backward(x, target)
        self._update(self.D, self.opt_D, self._clip_D)
        return out

    def g_step(self) -> tuple[float, float]:
        """One G update on the fakes of the last `generate` call, scored by the current D ->
        (G loss, mean D(G(z))) before the update. D is not updated."""
        out = self.g_backward()
        self._update(self.G, self.opt_G, self._clip_G)
        return out

    def generate(self, z: np.ndarray) -> np.ndarray:
        """x = G(z): z (N, z_dim) -> (N, x_dim); caches what G's backward pass needs."""
        self.x_fake = self.G.forward(z)
        return self.x_fake

    def train_step(self, x_real: np.ndarray, z: np.ndarray) -> tuple[float, float, float, float, float]:
        """The seed's iteration on x_real (N, x_dim) and z (N, z_dim) ->
        (loss_D_real, loss_D_fake, loss_G, mean D(x_real), mean D(G(z)) at the G step)."""
        loss_real, p_real = self.d_step(x_real, 1.0)
        loss_fake, _ = self.d_step(self.generate(z), 0.0)
        loss_g, p_fake = self.g_step()
        return loss_real, loss_fake, loss_g, p_real, p_fake


def _mean(p: np.ndarray) -> float:
    return float(np.add.reduce(p, axis=None)) / p.shape[0]
