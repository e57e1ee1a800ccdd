"""DCGAN-style convolutional G and D (Radford et al. 2015) for any side S = b * 2^k, b in 3..7.

28 px: 7 -> 14 -> 28; 32 px: 4 -> 8 -> 16 -> 32; 64 px: 4 -> 8 -> 16 -> 32 -> 64.
G: z -> Linear -> (C0, b, b) -> k stride-2 transposed convs (BN + ReLU between, tanh out).
D: k stride-2 convs (LeakyReLU 0.2, BN except on the input layer) -> (C0, b, b) -> logit.
Channel widths double as resolution halves: C0 = width * 2^(k-1).

Conditioning (model.conditional: true) has two forms (option `cond`):
- "concat": seed 003's condition sub-networks (one-hot -> 32 -> 64, ELU) concatenated with z
  in G and with the image features in D (followed by a hidden layer, so the label can
  interact with the image).
- "projection": Miyato & Koyama 2018: D's logit = w . phi(x) + embed(c) . phi(x); G gets a
  learned class embedding concatenated with z.
With either, option `g_cond_bn` also gives G's convolutional batch norms class-chosen gains and
biases (conditional batch norm, as in SNGAN's and BigGAN's G), so the label acts at every scale.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import MODELS
from .layers import ConditionalBatchNorm, LabelMLP, initialise, need_labels, project, reset_conditional_norms


def square_image(shape: tuple[int, ...], family: str) -> tuple[int, int]:
    """(channels, side) of square images (C, S, S), or a ConfigError naming the family."""
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"model {family} needs square images (C, S, S); this dataset gives samples of shape "
                          f"{shape}. Use model.name=mlp for vector data.")
    return shape[0], shape[1]


def split_size(size: int, family: str = "dcgan") -> tuple[int, int]:
    """Side S -> (b, k) with S = b * 2^k, 3 <= b <= 7, k >= 1."""
    k, b = 0, size
    while b > 7 and b % 2 == 0:
        b, k = b // 2, k + 1
    if not (3 <= b <= 7 and k >= 1):
        raise ConfigError(
            f"model {family} cannot build images of side {size}: the side must be b * 2^k with "
            "b between 3 and 7 (e.g. 28, 32, 48, 64, 128). Set data.image_size to such a size."
        )
    return b, k


class ConvGenerator(nn.Module):
    """z (N, z_dim) [+ labels (N,)] -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, z_dim, channels, size, width, n_classes=0, cond="concat", cond_bn=False):
        super().__init__()
        b, k = split_size(size)
        self.n_classes, self.b, self.c0 = n_classes, b, width * 2 ** (k - 1)
        self.label_net = None
        if n_classes:
            self.label_net = LabelMLP(n_classes) if cond == "concat" else nn.Embedding(n_classes, z_dim)
        z_in = z_dim + (0 if not n_classes else 64 if cond == "concat" else z_dim)
        self.project = nn.Sequential(
            nn.Linear(z_in, self.c0 * b * b, bias=False), nn.BatchNorm1d(self.c0 * b * b), nn.ReLU()
        )
        blocks, c = [], self.c0
        for i in range(k):
            last = i == k - 1
            c_out = channels if last else c // 2
            blocks.append(nn.ConvTranspose2d(c, c_out, 4, 2, 1, bias=last))
            norm = ConditionalBatchNorm(c_out, n_classes) if cond_bn and n_classes else nn.BatchNorm2d(c_out)
            blocks += [nn.Tanh()] if last else [norm, nn.ReLU()]
            c = c_out
        self.up = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        need_labels(c, self.n_classes, "G")
        if self.label_net is not None:
            z = torch.cat([z, self.label_net(c)], dim=1)  # (N, z_in)
        h = self.project(z).view(-1, self.c0, self.b, self.b)  # (N, C0, b, b)
        for layer in self.up:  # (N, C, S, S) at the end
            h = layer(h, c) if isinstance(layer, ConditionalBatchNorm) else layer(h)
        return h


class ConvDiscriminator(nn.Module):
    """images (N, C, S, S) [+ labels (N,)] -> logits (N,)."""

    def __init__(self, channels, size, width, n_classes=0, cond="concat", batch_norm=True):
        super().__init__()
        b, k = split_size(size)
        self.n_classes, self.cond = n_classes, cond
        layers, c = [], channels
        for i in range(k):
            c_out = width * 2**i
            layers.append(nn.Conv2d(c, c_out, 4, 2, 1, bias=not (batch_norm and i > 0)))
            if batch_norm and i > 0:  # no BN on the input layer (DCGAN)
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())  # (N, C0 * b * b)
        n_feat = c * b * b
        self.label_net = self.embed = None
        if n_classes and cond == "concat":
            self.label_net = LabelMLP(n_classes)
            self.head = nn.Sequential(nn.Linear(n_feat + 64, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))
        else:
            self.head = nn.Linear(n_feat, 1)
            if n_classes:
                self.embed = nn.Embedding(n_classes, n_feat)

    @property
    def gives_class_scores(self) -> bool:
        return self.embed is not None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, classes: bool = False):
        """logits (N,); with `classes` (projection D only) also every class's score (N, n_classes)."""
        need_labels(c, self.n_classes, "D")
        phi = self.features(x)  # (N, F)
        if self.label_net is not None:
            if classes:
                raise ValueError("class scores come from a projection D (model.options.cond=projection)")
            return self.head(torch.cat([phi, self.label_net(c)], dim=1)).squeeze(1)
        return project(self.head(phi).squeeze(1), phi, self.embed, c, classes)


@MODELS.register("dcgan")
def build_dcgan(
    shape: tuple[int, ...],
    z_dim: int,
    n_classes: int = 0,
    g_width: int = 64,  # channels of G's last hidden layer; earlier layers double it
    d_width: int = 64,  # channels of D's first layer; later layers double it
    d_batch_norm: bool = True,  # batch norm in D (turn off for WGAN-GP: the penalty is per sample)
    cond: str = "concat",  # conditioning when model.conditional: "concat" (seed 003) or "projection"
    g_cond_bn: bool = False,  # conditional G: class-chosen gains and biases in its batch norms too
    init: str = "dcgan",  # "dcgan" (N(0, 0.02)) or "default" (PyTorch)
):
    """DCGAN conv G and D for square images of side b * 2^k (28, 32, 64, ...)."""
    channels, size = square_image(shape, "dcgan")
    if cond not in ("concat", "projection"):
        raise ConfigError(f"model.options.cond must be 'concat' or 'projection', got {cond!r}")
    if g_cond_bn and not n_classes:
        raise ConfigError("model.options.g_cond_bn=true needs labels: set model.conditional=true (or drop the option)")
    G = ConvGenerator(z_dim, channels, size, g_width, n_classes, cond, g_cond_bn)
    D = ConvDiscriminator(channels, size, d_width, n_classes, cond, d_batch_norm)
    G, D = initialise(G, init), initialise(D, init)
    reset_conditional_norms(G)  # class gains 1, biases 0: G starts as with plain batch norm
    return G, D
