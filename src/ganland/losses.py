"""Adversarial losses as pure functions of D's logits, plus the gradient penalties.

Each loss is a pair, both to be *minimised*:
    d_loss(real_logits, fake_logits) = d_real(real_logits) + d_fake(fake_logits)
    g_loss(fake_logits)
except the relativistic pairing loss (RpGAN), whose terms couple the i-th real and fake samples:
    d_loss = pair_d(real_logits, fake_logits), g_loss(fake_logits, real_logits) = pair_g(...),
so its G step also shows D a real batch (`needs_real_in_g`).
`real_logits` and `fake_logits` are D's raw outputs, shape (N,). D(x) = sigmoid(logit) for the
probabilistic losses; the Wasserstein and hinge losses read the logit as a critic score.
The split of d_loss into a real and a fake term lets the trainer report D's loss on held-out
real data (seed 000's per-epoch validation). The training step calls backward, not the loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .registry import Registry


@dataclass(frozen=True)
class AdversarialLoss:
    name: str
    d_real: Callable[[Tensor], Tensor]  # D's loss on real logits (N,) -> scalar
    d_fake: Callable[[Tensor], Tensor]  # D's loss on fake logits (N,) -> scalar
    g: Callable[[Tensor], Tensor]  # G's loss on fake logits (N,) -> scalar
    probabilistic: bool  # logits are log-odds of "real", so sigmoid(logit) = D(x) is meaningful
    doc: str = ""
    needs_lipschitz: bool = False  # D's loss is unbounded without a Lipschitz constraint on D (clipping, GP, SN)
    pair_d: Optional[Callable[[Tensor, Tensor], Tensor]] = None  # D's loss of (real, fake) logits, when they couple
    pair_g: Optional[Callable[[Tensor, Tensor], Tensor]] = None  # G's loss of (fake, real) logits, when they couple

    @property
    def needs_real_in_g(self) -> bool:
        """G's loss reads D's logits on a real batch too (relativistic losses)."""
        return self.pair_g is not None

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        if self.pair_d is not None:
            return self.pair_d(real_logits, fake_logits)
        return self.d_real(real_logits) + self.d_fake(fake_logits)

    def g_loss(self, fake_logits: Tensor, real_logits: Optional[Tensor] = None) -> Tensor:
        if self.pair_g is not None:
            if real_logits is None:
                raise ValueError(f"loss {self.name} pairs fake with real samples: pass real_logits to g_loss")
            return self.pair_g(fake_logits, real_logits)
        return self.g(fake_logits)


LOSSES: Registry[AdversarialLoss] = Registry("loss")


def register_loss(name: str, *, d_real, d_fake, g, probabilistic: bool, doc: str,
                  needs_lipschitz: bool = False, pair_d=None, pair_g=None) -> AdversarialLoss:
    loss = AdversarialLoss(name, d_real, d_fake, g, probabilistic, doc, needs_lipschitz, pair_d, pair_g)
    LOSSES.register(name, help=doc)(loss)
    return loss


# Identities used below, with s = sigmoid:  -log s(l) = softplus(-l),  -log(1 - s(l)) = softplus(l).
# Written with softplus they are exact and finite for any logit.

# Minimax (Goodfellow et al. 2014; seed 003's value function V = E log D(x) + E log(1 - D(G(z)))).
# D maximises V  <=>  minimises -log D(x) - log(1 - D(G(z))).
# G minimises E log(1 - D(G(z))) = -softplus(l): saturates (vanishing gradient) when D wins.
register_loss(
    "minimax",
    d_real=lambda l: F.softplus(-l).mean(),  # -E log D(x)
    d_fake=lambda l: F.softplus(l).mean(),  # -E log(1 - D(G(z)))
    g=lambda l: -F.softplus(l).mean(),  # E log(1 - D(G(z)))
    probabilistic=True,
    doc="saturating minimax game of the original GAN: G minimises E log(1 - D(G(z)))",
)

# Non-saturating (the same D; G maximises E log D(G(z)) instead, seed 003 section 9.1.2).
register_loss(
    "non-saturating",
    d_real=lambda l: F.softplus(-l).mean(),  # -E log D(x)
    d_fake=lambda l: F.softplus(l).mean(),  # -E log(1 - D(G(z)))
    g=lambda l: F.softplus(-l).mean(),  # -E log D(G(z))
    probabilistic=True,
    doc="binary cross-entropy; G minimises -E log D(G(z)) (strong gradients early on)",
)

# Least squares (Mao et al. 2017 with a=0, b=c=1; seed 000's mean squared error). Targets are
# applied to D's raw output, as in the LSGAN paper (seed 000 squares sigmoid(logit); see docs/seeds.md).
register_loss(
    "least-squares",
    d_real=lambda l: (l - 1.0).square().mean(),  # E (D(x) - 1)^2
    d_fake=lambda l: l.square().mean(),  # E D(G(z))^2
    g=lambda l: (l - 1.0).square().mean(),  # E (D(G(z)) - 1)^2
    probabilistic=False,
    doc="LSGAN: mean squared error to targets 1 (real) and 0 (fake) on D's output",
)

# Wasserstein (Arjovsky et al. 2017): the critic maximises E f(x) - E f(G(z)); G maximises E f(G(z)).
# Needs a Lipschitz constraint: optim.D.weight_clip (WGAN) or loss.gp_weight (WGAN-GP).
register_loss(
    "wasserstein",
    d_real=lambda l: -l.mean(),  # -E f(x)
    d_fake=lambda l: l.mean(),  # +E f(G(z))
    g=lambda l: -l.mean(),  # -E f(G(z))
    probabilistic=False,
    doc="Wasserstein critic; pair with optim.D.weight_clip (WGAN) or loss.gp_weight (WGAN-GP)",
    needs_lipschitz=True,  # without it the critic's scores grow without bound
)

# Hinge (Lim & Ye 2017; Miyato et al. 2018): D minimises E relu(1 - f(x)) + E relu(1 + f(G(z))).
register_loss(
    "hinge",
    d_real=lambda l: F.relu(1.0 - l).mean(),  # E max(0, 1 - f(x))
    d_fake=lambda l: F.relu(1.0 + l).mean(),  # E max(0, 1 + f(G(z)))
    g=lambda l: -l.mean(),  # -E f(G(z))
    probabilistic=False,
    doc="hinge loss for D, -E f(G(z)) for G (SNGAN's choice with spectral norm)",
)


# Relativistic pairing (RpGAN; Jolicoeur-Martineau 2019, with R1 and R2 the baseline of Huang et al.
# 2024): D minimises E softplus(-(f(x_i) - f(G(z_i)))), each real judged against a fake; G the
# mirror image E softplus(-(f(G(z_i)) - f(x_i))). The logits are not probabilities of "real" on their
# own; the held-out report (which needs a real-only term) reads them with the logistic term
# softplus(-f(x)), and d_real + d_fake is that report's proxy, not the loss.
register_loss(
    "rpgan",
    d_real=lambda l: F.softplus(-l).mean(),
    d_fake=lambda l: F.softplus(l).mean(),
    g=lambda l: F.softplus(-l).mean(),
    probabilistic=False,
    doc="relativistic pairing: D and G compare each fake with a real (pair with R1 + R2)",
    pair_d=lambda real, fake: F.softplus(fake - real).mean(),  # -E log sigmoid(f(x) - f(G(z)))
    pair_g=lambda fake, real: F.softplus(real - fake).mean(),  # -E log sigmoid(f(G(z)) - f(x))
)


# ---------------------------------------------------------------------------------------------
# Penalties


def _input_grad_norms(D, x: Tensor, c: Optional[Tensor]) -> Tensor:
    """||d D(x_i) / d x_i||_2 for every sample i: (N,). Keeps the graph for double backward."""
    x = x.requires_grad_(True)
    logits = D(x, c)  # (N,)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # (N, *shape)
    return grad.flatten(1).norm(2, dim=1)


def gradient_penalty(
    D, real: Tensor, fake: Tensor, c: Optional[Tensor], generator: torch.Generator, target: float = 1.0,
    shard: tuple[int, int] = (0, 1),
) -> Tensor:
    """WGAN-GP penalty E (||grad D(x_hat)|| - target)^2 (Gulrajani et al. 2017), unweighted.

    x_hat = eps * real + (1 - eps) * fake with one eps ~ U(0, 1) per *sample* (not per pixel).
    real, fake: (N, *shape); c: labels (N,) or None. Returns a scalar.
    shard: (rank, processes): the batch is this process's slice of a global batch of N * processes;
    the weights are drawn for all of it and sliced, so the stream does not depend on the processes.
    """
    rank, size = shard
    n = real.shape[0]
    eps = torch.rand(n * size, device=real.device, generator=generator, dtype=real.dtype)[rank * n:(rank + 1) * n]
    eps = eps.view(-1, *([1] * (real.dim() - 1)))  # (N, 1, ..., 1): broadcast over each sample
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    norms = _input_grad_norms(D, x_hat, c)
    return (norms - target).square().mean()


def r1_penalty(D, real: Tensor, c: Optional[Tensor]) -> Tensor:
    """R1 penalty E ||grad D(x)||^2 on real data (Mescheder et al. 2018), unweighted (no 1/2)."""
    return _input_grad_norms(D, real.detach(), c).square().mean()


def r2_penalty(D, fake: Tensor, c: Optional[Tensor]) -> Tensor:
    """R2 penalty E ||grad D(G(z))||^2 on generated data (Mescheder et al. 2018), unweighted."""
    return _input_grad_norms(D, fake.detach(), c).square().mean()


def consistency_penalty(logits: Tensor, transformed_logits: Tensor) -> Tensor:
    """Consistency regularisation (Zhang et al. 2020): E (D(x) - D(T(x)))^2 for a semantics-keeping
    transformation T of the same images; both logits (N,). Unweighted."""
    return (logits - transformed_logits).square().mean()
