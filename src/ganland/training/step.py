"""One discriminator step and one generator step: the algorithm, with no I/O.

Both return a dict of detached scalar tensors (no host synchronisation); the loop decides when
to read them.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import OptimizerConfig
from ..augment import augment
from ..losses import AdversarialLoss, consistency_penalty, gradient_penalty, r1_penalty, r2_penalty
from .distributed import World

if TYPE_CHECKING:
    from .augmentation import Augmenter


@dataclass
class StepSettings:
    loss: AdversarialLoss
    opt_G_cfg: OptimizerConfig
    opt_D_cfg: OptimizerConfig
    gp_weight: float = 0.0
    gp_target: float = 1.0
    r1_weight: float = 0.0
    autocast: Optional[tuple[str, torch.dtype]] = None  # (device type, dtype) of mixed precision; None = fp32
    world: World = field(default_factory=World.single)  # the processes whose gradients are averaged
    r2_weight: float = 0.0
    cr_weight: float = 0.0
    augment: Optional["Augmenter"] = None  # what D sees of any image (training/augmentation.py)
    l1_weight: float = 0.0  # image-to-image: weight of G's L1 distance to the target
    adv_weight: float = 1.0  # weight of G's adversarial loss; 0 = no D (the L1-only baseline)
    ac_weight: float = 0.0  # auxiliary classification (cross-entropy on a projection D's class scores)

    def seen(self, x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """Images as D sees them: augmented when train.augment is on (differentiably)."""
        return x if self.augment is None else self.augment(x, generator)

    def precision(self):
        """The autocast context of the forward passes (losses are taken in fp32 on its outputs)."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.autocast[0], dtype=self.autocast[1])


def grad_norm(module: nn.Module) -> Tensor:
    """Global L2 norm of the gradients of `module` (a 0-d tensor)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def clip_and_step(module: nn.Module, opt: torch.optim.Optimizer, o: OptimizerConfig, want_norm: bool,
                  world: Optional[World] = None):
    """The gradients averaged over the processes (several under torchrun), then gradient-norm
    clipping, the optimizer update and weight clipping, as configured.

    Returns the gradient norm before clipping when `want_norm` (else None).
    """
    if world is not None:
        world.average_gradients(module)
    norm = None
    if o.grad_clip is not None and o.grad_clip_per_tensor:
        # Seed 002: each parameter tensor is rescaled to norm <= grad_clip on its own.
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        norms = torch._foreach_norm(grads)
        if want_norm:
            norm = torch.linalg.vector_norm(torch.stack(norms))
        scales = [torch.clamp(o.grad_clip / (n + 1e-12), max=1.0) for n in norms]
        torch._foreach_mul_(grads, scales)
    elif o.grad_clip is not None:
        norm = nn.utils.clip_grad_norm_(module.parameters(), o.grad_clip)
    elif want_norm:
        norm = grad_norm(module)
    opt.step()
    if o.weight_clip is not None:
        with torch.no_grad():
            params = [p for p in module.parameters()]
            torch._foreach_clamp_min_(params, -o.weight_clip)
            torch._foreach_clamp_max_(params, o.weight_clip)
    return norm


def judge(D: nn.Module, x: Tensor, c: Optional[Tensor], scores: bool) -> tuple[Tensor, Optional[Tensor]]:
    """D's logits (N,) in fp32 and, with `scores` (loss.ac_weight), a projection D's class scores
    (N, n_classes) in fp32 from the same forward pass; else None."""
    if not scores:
        return D(x, c).float(), None
    logits, class_scores = D(x, c, classes=True)
    return logits.float(), class_scores.float()


def d_step(
    G: nn.Module, D: nn.Module, opt_D: torch.optim.Optimizer, s: StepSettings,
    x_real: Tensor, c_real: Optional[Tensor], z: Tensor, c_fake: Optional[Tensor],
    generator: torch.Generator, want_norm: bool = False, x_fake: Optional[Tensor] = None,
) -> dict[str, Tensor]:
    """Update D once on a real batch (N, *shape) and a fake batch made from z (N, z_dim).

    x_fake: the fake batch when the caller already made it (it is detached here); z is then unused.
    With augmentation, D judges (and is penalised on) the augmented images.
    """
    if x_fake is None:
        with torch.no_grad(), s.precision():
            x_fake = G(z, c_fake)  # (N, *shape), no graph into G
    x_fake = x_fake.detach().float()  # fp32 for the penalties (a no-op without mixed precision)
    x_real, x_fake = s.seen(x_real, generator), s.seen(x_fake, generator)
    with s.precision():
        real_logits, real_scores = judge(D, x_real, c_real, s.ac_weight > 0)
        fake_logits = D(x_fake, c_fake).float()  # (N,)
    if s.augment is not None:
        s.augment.observe(real_logits)  # the adaptive probability's overfitting signal
    loss_D = s.loss.d_loss(real_logits, fake_logits)
    out = {"loss_D": loss_D.detach(), "real_logit": real_logits.detach().mean(),
           "fake_logit": fake_logits.detach().mean()}
    if s.loss.probabilistic:
        out["D_real"] = torch.sigmoid(real_logits.detach()).mean()  # D(x)
        out["D_fake"] = torch.sigmoid(fake_logits.detach()).mean()  # D(G(z))
    shard = (s.world.rank, s.world.size)
    if s.ac_weight > 0:  # AC-GAN's classifier, trained on real images only (G's fakes teach it nothing true)
        ac = F.cross_entropy(real_scores, c_real.long())
        loss_D = loss_D + s.ac_weight * ac
        out["ac_D"] = ac.detach()
    if s.gp_weight > 0:
        # The interpolates must match D's labels: with labels, use the real labels for both ends.
        gp = gradient_penalty(D, x_real, x_fake, c_real, generator, s.gp_target, shard)
        loss_D = loss_D + s.gp_weight * gp
        out["gp"] = gp.detach()
    if s.r1_weight > 0:
        r1 = r1_penalty(D, x_real, c_real)
        loss_D = loss_D + 0.5 * s.r1_weight * r1
        out["r1"] = r1.detach()
    if s.r2_weight > 0:
        r2 = r2_penalty(D, x_fake, c_fake)
        loss_D = loss_D + 0.5 * s.r2_weight * r2
        out["r2"] = r2.detach()
    if s.cr_weight > 0:
        moved = augment(x_real, ("translation",), 1.0, generator, shard)  # T: a translation keeps the meaning
        with s.precision():
            moved_logits = D(moved, c_real).float()
        cr = consistency_penalty(real_logits, moved_logits)
        loss_D = loss_D + s.cr_weight * cr
        out["cr"] = cr.detach()
    opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    norm = clip_and_step(D, opt_D, s.opt_D_cfg, want_norm, s.world)
    if norm is not None:
        out["grad_norm_D"] = norm.detach()
    return out


def g_step(
    G: nn.Module, D: nn.Module, opt_G: torch.optim.Optimizer, s: StepSettings,
    z: Optional[Tensor], c_fake: Optional[Tensor], want_norm: bool = False, x_fake: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None, x_real: Optional[Tensor] = None, c_real: Optional[Tensor] = None,
) -> dict[str, Tensor]:
    """Update G once through D (D's weights are frozen for this step).

    x_fake: G's output with its graph, when the caller already made it (speed.reuse_fake).
    generator: the noise stream, for augmentation. x_real, c_real: a real batch, for losses that
    compare fakes with reals (RpGAN), and the targets of G's outputs (loss.l1_weight; image-to-image
    runs make x_fake from the inputs c_fake = c_real of that batch).
    loss_G is the whole objective: adv_weight * adversarial + l1_weight * L1 (both parts logged
    as "adv_G" and "l1" when there is an L1 term).
    """
    if s.loss.needs_real_in_g and x_real is None:
        raise ValueError(f"loss {s.loss.name} compares fakes with reals: pass x_real to g_step")
    if s.l1_weight > 0 and x_real is None:
        raise ValueError("loss.l1_weight compares G's outputs with their targets: pass x_real to g_step")
    out: dict[str, Tensor] = {}
    D.requires_grad_(False)  # no gradients for D's weights: saves their backward
    try:
        with s.precision():
            x = G(z, c_fake) if x_fake is None else x_fake
            loss_G = x.new_zeros((), dtype=torch.float32)
            if s.adv_weight > 0:
                fake_logits, fake_scores = judge(D, s.seen(x, generator), c_fake, s.ac_weight > 0)
                real_logits = None
                if s.loss.needs_real_in_g:
                    with torch.no_grad():
                        real_logits = D(s.seen(x_real, generator), c_real).float()
        if s.adv_weight > 0:
            adv = s.loss.g_loss(fake_logits, real_logits)
            loss_G = loss_G + s.adv_weight * adv
            if s.l1_weight > 0:
                out["adv_G"] = adv.detach()
        if s.ac_weight > 0:  # G's fakes should be read as the class they were made for
            ac = F.cross_entropy(fake_scores, c_fake.long())
            loss_G = loss_G + s.ac_weight * ac
            out["ac_G"] = ac.detach()
        if s.l1_weight > 0:  # pix2pix's reconstruction term: the mean absolute error in model units
            l1 = (x.float() - x_real.float()).abs().mean()
            loss_G = loss_G + s.l1_weight * l1
            out["l1"] = l1.detach()
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
    finally:
        D.requires_grad_(True)
    norm = clip_and_step(G, opt_G, s.opt_G_cfg, want_norm, s.world)
    out["loss_G"] = loss_G.detach()
    if norm is not None:
        out["grad_norm_G"] = norm.detach()
    return out


@torch.no_grad()
def ema_update(G_ema: nn.Module, G: nn.Module, decay: float) -> None:
    """G_ema <- decay * G_ema + (1 - decay) * G for the parameters; buffers (batch-norm
    statistics) are copied."""
    torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1.0 - decay)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)
