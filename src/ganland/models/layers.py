"""Blocks shared by several model families: activations, initialisations, spectral norm,
projection and conditional batch norm for labels."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry, close_match_hint

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "identity": lambda: nn.Identity(),
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (leaky_relu uses slope 0.2, as DCGAN and seed 002)."""
    if name not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}." + close_match_hint(name, ACTIVATIONS)
        )
    return ACTIVATIONS[name]()


INITS: Registry = Registry("initialisation")


@INITS.register("default")
def init_default(module: nn.Module) -> None:
    """PyTorch's own initialisation (kept as is)."""


@INITS.register("dcgan")
def init_dcgan(module: nn.Module) -> None:
    """Radford et al. 2015: conv/linear weights ~ N(0, 0.02), BN gamma ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@INITS.register("ortho")
def init_ortho(module: nn.Module) -> None:
    """BigGAN's choice: orthogonal conv, linear and embedding weights (Saxe et al. 2014), biases 0;
    batch-norm gains 1, biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@INITS.register("glorot")
def init_glorot(module: nn.Module) -> None:
    """Keras' default (seed 003): Glorot-uniform weights, U(-a, a), a = sqrt(6 / (fan_in + fan_out)); biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@INITS.register("lecun-normal")
def init_lecun_normal(module: nn.Module) -> None:
    """Chainer's default (seed 000): W ~ N(0, 1 / fan_in), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fan_in = m.weight[0].numel() if not isinstance(m, nn.ConvTranspose2d) else m.weight[:, 0].numel()
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@INITS.register("seed002-uniform")
def init_seed002_uniform(module: nn.Module) -> None:
    """Seed 002: W ~ U(-s, s), s = sqrt(2 / (fan_in + fan_out)); bias as a (1, out) matrix likewise."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            s = math.sqrt(2.0 / (m.in_features + m.out_features))
            nn.init.uniform_(m.weight, -s, s)
            if m.bias is not None:
                sb = math.sqrt(2.0 / (1 + m.out_features))
                nn.init.uniform_(m.bias, -sb, sb)


def initialise(module: nn.Module, name: str) -> nn.Module:
    INITS.get(name)(module)
    return module


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv, linear and embedding weight."""
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.utils.parametrizations.spectral_norm(m)
    return module


class LabelMLP(nn.Module):
    """Seed 003's condition sub-network: one-hot label -> Dense(32, ELU) -> Dense(64, ELU).

    c: int64 (N,) -> (N, widths[-1]).
    """

    def __init__(self, n_classes: int, widths: tuple[int, ...] = (32, 64)):
        super().__init__()
        self.n_classes = n_classes
        layers, w_in = [], n_classes
        for w in widths:
            layers += [nn.Linear(w_in, w), nn.ELU()]
            w_in = w
        self.net = nn.Sequential(*layers)
        self.out_features = w_in

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        one_hot = nn.functional.one_hot(c, self.n_classes).to(self.net[0].weight.dtype)  # (N, n_classes)
        return self.net(one_hot)


def need_labels(c, n_classes: int, who: str) -> None:
    """Raise a clear error when a conditional model is called without labels, or vice versa."""
    if n_classes and c is None:
        raise ValueError(f"{who} is conditional on {n_classes} classes: pass labels c (N,)")
    if not n_classes and c is not None:
        raise ValueError(f"{who} is unconditional: call it without labels")


def project(logits: torch.Tensor, phi: torch.Tensor, embed: Optional[nn.Embedding], c: Optional[torch.Tensor],
            classes: bool = False):
    """A projection D's output (Miyato & Koyama 2018): logits (N,) + embed(c) . phi (N, F), the
    label's row of the class scores phi @ embed.T (N, n_classes). With `classes`, (logits, scores):
    the scores are what an auxiliary classifier (loss.ac_weight) reads, at no extra cost."""
    if embed is None:
        if classes:
            raise ValueError("class scores come from a conditional projection D: this D has no labels")
        return logits
    if not classes:
        return logits + (embed(c) * phi).sum(dim=1)  # (N,): one row of the scores, without the rest
    scores = phi @ embed.weight.t()  # (N, n_classes)
    return logits + scores.gather(1, c.long().view(-1, 1)).squeeze(1), scores


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose gain and bias are chosen by the label (plain BN without labels).

    x: (N, C, H, W), c: (N,) or None -> (N, C, H, W).
    """

    def __init__(self, channels: int, n_classes: int = 0):
        super().__init__()
        self.n_classes = n_classes
        self.bn = nn.BatchNorm2d(channels, affine=not n_classes)
        if n_classes:
            self.gain = nn.Embedding(n_classes, channels)  # gain = 1 + gain(c): starts as plain BN
            self.bias = nn.Embedding(n_classes, channels)
            self.reset()

    def reset(self) -> None:
        """Gains 1 and biases 0 for every class (after a model-wide initialisation)."""
        if self.n_classes:
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = self.bn(x)
        if not self.n_classes:
            return h
        gain = 1.0 + self.gain(c)[:, :, None, None]  # (N, C, 1, 1)
        return h * gain + self.bias(c)[:, :, None, None]


def reset_conditional_norms(module: nn.Module) -> None:
    """Every conditional batch norm in `module` back to plain BN (after a model-wide initialisation,
    which would have drawn its class embeddings like any other)."""
    for m in module.modules():
        if isinstance(m, ConditionalBatchNorm):
            m.reset()
