"""Residual G and D in the style of SNGAN (Miyato et al. 2018) and BigGAN (Brock et al. 2019).

Square images of side S = b * 2^k (b in 3..7), grayscale or RGB: 28 px: 7 -> 14 -> 28; 32 px:
4 -> 8 -> 16 -> 32; 64 px: 4 -> 8 -> 16 -> 32 -> 64.

G: z -> Linear -> (C_0, b, b) -> k up-blocks -> BN, ReLU, conv3x3, tanh. An up-block is
   BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3, plus a shortcut nearest x2, conv1x1.
   Channels halve at every block: C_i = g_width * 2^(k-1-i), so the last block has g_width.
D: k down-blocks (C_i = d_width * 2^i) and `d_extra` blocks at side b, then ReLU, a sum over the
   positions and a linear logit. A down-block is ReLU, conv3x3, ReLU, conv3x3, avg-pool 2,
   plus a shortcut conv1x1, avg-pool 2; the first block has no ReLU on the image and pools before
   its shortcut's conv (SNGAN's "optimised" first block).

Labels (model.conditional: true): conditional batch norm in G (per-class gain and bias of every
BN, gains start at 1) and a projection D (Miyato & Koyama 2018): logit = w . h + embed(c) . h.
Self-attention (Zhang et al. 2019) at one side in px (`attention`), in G and D.
Spectral norm of D: model.spectral_norm; of G too: `g_spectral_norm` (BigGAN). `init`:
"ortho" (orthogonal weights, BigGAN) or any of ganland's initialisations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import MODELS
from .dcgan import split_size, square_image
from .layers import (ConditionalBatchNorm, apply_spectral_norm, initialise, need_labels, project,
                     reset_conditional_norms)


class SelfAttention(nn.Module):
    """Self-attention over the positions of a feature map (SAGAN), with BigGAN's 2x2 pooling of
    keys and values. Starts as the identity (the output gain is 0)."""

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, max(1, channels // 8), 1, bias=False)
        self.key = nn.Conv2d(channels, max(1, channels // 8), 1, bias=False)
        self.value = nn.Conv2d(channels, max(1, channels // 2), 1, bias=False)
        self.out = nn.Conv2d(max(1, channels // 2), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (N, C/8, HW)
        pool = (lambda t: F.max_pool2d(t, 2)) if h % 2 == 0 and w % 2 == 0 else (lambda t: t)
        k = pool(self.key(x)).flatten(2)  # (N, C/8, HW')
        v = pool(self.value(x)).flatten(2)  # (N, C/2, HW')
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (N, HW, HW')
        o = (v @ attn.transpose(1, 2)).view(n, -1, h, w)  # (N, C/2, H, W)
        return x + self.gamma * self.out(o)


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, n_classes: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(c_in, n_classes)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.bn2 = ConditionalBatchNorm(c_out, n_classes)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")  # (N, C_in, 2H, 2W)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))  # (N, C_out, 2H, 2W)
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, down: bool, first: bool):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # pool first: the conv1x1 then runs on a quarter of the positions
            s = self.skip(F.avg_pool2d(s, 2) if self.down else s)
        else:
            s = self.skip(s) if self.skip is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetGenerator(nn.Module):
    """z (N, z_dim) [+ labels (N,)] -> images (N, C, S, S) in [-1, 1]."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int, n_classes: int = 0, attention: int = 0):
        super().__init__()
        b, k = split_size(size, "resnet")
        self.n_classes, self.b = n_classes, b
        widths = [width * 2 ** (k - i) for i in range(k)] + [width]  # block i: widths[i] -> widths[i + 1]
        self.c0 = widths[0]
        self.project = nn.Linear(z_dim, self.c0 * b * b)
        self.blocks = nn.ModuleList(UpBlock(widths[i], widths[i + 1], n_classes) for i in range(k))
        self.attention = nn.ModuleDict()
        for i in range(k):
            if attention == b * 2 ** (i + 1):
                self.attention[str(i)] = SelfAttention(widths[i + 1])
        self.out_bn = nn.BatchNorm2d(width)
        self.out = nn.Conv2d(width, channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        need_labels(c, self.n_classes, "G")
        h = self.project(z).view(-1, self.c0, self.b, self.b)  # (N, C_0, b, b)
        for i, block in enumerate(self.blocks):
            h = block(h, c)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return torch.tanh(self.out(F.relu(self.out_bn(h))))  # (N, C, S, S)


class ResNetDiscriminator(nn.Module):
    """images (N, C, S, S) [+ labels (N,)] -> logits (N,)."""

    def __init__(self, channels: int, size: int, width: int, n_classes: int = 0, attention: int = 0, extra: int = 1):
        super().__init__()
        b, k = split_size(size, "resnet")
        self.n_classes = n_classes
        blocks, c, side = [], channels, size
        self.attention = nn.ModuleDict()
        for i in range(k + extra):
            down = i < k
            c_out = width * 2 ** min(i, k - 1)
            blocks.append(DownBlock(c, c_out, down, first=i == 0))
            c, side = c_out, side // 2 if down else side
            if attention == side and not self.attention and down:
                self.attention[str(i)] = SelfAttention(c)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, 1)
        self.embed = nn.Embedding(n_classes, c) if n_classes else None

    @property
    def gives_class_scores(self) -> bool:
        return self.embed is not None

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, classes: bool = False):
        """logits (N,); with `classes` (conditional D) also every class's score (N, n_classes)."""
        need_labels(c, self.n_classes, "D")
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        phi = F.relu(h).sum(dim=(2, 3))  # (N, C): sum over positions (SNGAN)
        return project(self.head(phi).squeeze(1), phi, self.embed, c, classes)


@MODELS.register("resnet")
def build_resnet(
    shape: tuple[int, ...],
    z_dim: int,
    n_classes: int = 0,
    g_width: int = 64,  # channels of G's last block; earlier blocks double it
    d_width: int = 64,  # channels of D's first block; later blocks double it
    d_extra: int = 1,  # D blocks after the last down-sampling (SNGAN's CIFAR D has 2)
    attention: int = 0,  # self-attention at this side in px in G and D (e.g. 16, or 14 at 28 px); 0 = none
    g_spectral_norm: bool = False,  # spectral norm on G's weights too (BigGAN)
    init: str = "ortho",  # "ortho" (orthogonal, BigGAN), "dcgan", "default", ...
):
    """SNGAN/BigGAN residual G and D for square images of side b * 2^k (28, 32, 64, ...)."""
    channels, size = square_image(shape, "resnet")
    b, k = split_size(size, "resnet")
    sides = [b * 2 ** i for i in range(1, k + 1)]
    if attention and attention not in sides:
        raise ConfigError(f"model.options.attention={attention}: self-attention goes at a side the blocks make "
                          f"at {size} px: one of {', '.join(map(str, sides))} (or 0 for none)")
    if min(g_width, d_width) < 1 or d_extra < 0:
        raise ConfigError("model.options.g_width and d_width must be at least 1, d_extra at least 0")
    G = initialise(ResNetGenerator(z_dim, channels, size, g_width, n_classes, attention), init)
    D = initialise(ResNetDiscriminator(channels, size, d_width, n_classes, attention, d_extra), init)
    reset_conditional_norms(G)
    if g_spectral_norm:
        apply_spectral_norm(G)
    return G, D
