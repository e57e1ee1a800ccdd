"""train.augment: differentiable augmentation of everything D sees, real and fake, in D's and
G's steps (DiffAugment, Zhao et al. 2020), with an adaptive probability when
train.augment_target is set (ADA, Karras et al. 2020). The operations are in ganland.augment.

The random parameters come from the run's noise generator, drawn for the global batch and
sliced per process, so a run with augmentation resumes bit for bit and means the same at any
number of processes. The adaptive probability p and the controller's running sums are part of the
checkpoint; p and r_t = E[sign(D(x_real))] are logged (aug_p, aug_rt).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..augment import AdaptiveAugment, augment, parse_policy
from ..config import TrainConfig
from .distributed import World

ADA_INTERVAL = 4  # D steps between adjustments of p (ADA's value)


class Augmenter:
    """What the D and G steps apply to D's inputs: `aug(x, generator)`; `observe` D's real logits."""

    def __init__(self, ops: tuple[str, ...], p: float, ada: Optional[AdaptiveAugment], world: World):
        self.ops, self.p, self.ada, self.world = ops, p, ada, world
        self.images = self.d_steps = 0  # real images and D steps since the last adjustment of p

    @staticmethod
    def of(t: TrainConfig, channels: int, world: World, device: torch.device) -> Optional["Augmenter"]:
        """The augmenter a run's settings ask for, or None when train.augment is off."""
        ops = parse_policy(t.augment, channels)
        if not ops:
            return None
        ada = AdaptiveAugment(t.augment_target, t.augment_kimg, device=device) if t.augment_target else None
        return Augmenter(ops, 0.0 if ada else t.augment_p, ada, world)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return augment(x, self.ops, self.p, generator, (self.world.rank, self.world.size))

    def observe(self, real_logits: Tensor) -> None:
        """D's logits on (augmented) real images of one D step (the overfitting signal)."""
        if self.ada is not None:
            self.ada.observe(real_logits)

    def stepped(self, images: int) -> Optional[dict[str, Tensor]]:
        """After each D step (`images`: the global batch): every ADA_INTERVAL steps, p moves towards
        the target (one small all-reduce under torchrun). Returns what to log."""
        if self.ada is None:
            return {"aug_p": torch.tensor(self.p)}
        self.images, self.d_steps = self.images + images, self.d_steps + 1
        if self.d_steps % ADA_INTERVAL == 0:
            self.p = self.ada.adjust(self.world.total(self.ada.stats()), self.images)
            self.images = 0
        out = {"aug_p": torch.tensor(self.p)}
        if self.ada.rt is not None:
            out["aug_rt"] = torch.tensor(self.ada.rt)
        return out

    def for_timing(self) -> "Augmenter":
        """The same operations at the same probability (at least the full cost: p 1 when adaptive),
        with no controller to disturb: for timing steps."""
        return Augmenter(self.ops, 1.0 if self.ada is not None else self.p, None, self.world)

    def state_dict(self) -> dict:
        return {"p": self.p, "images": self.images, "d_steps": self.d_steps,
                "ada": self.ada.state_dict() if self.ada is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.images, self.d_steps = float(state["p"]), int(state["images"]), int(state["d_steps"])
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"])
            self.p = self.ada.p
