"""The seeds' own architectures, at their own sizes (28 x 28 images).

seed000: seed 000's Chainer DCGAN. G: Linear(z, h*7*7) -> BN -> ReLU -> ConvT(h, h/2) -> BN ->
  ReLU -> ConvT(h/2, C, no bias) -> tanh; D: three stride-2 4x4 convs (h, 2h, 4h), each with BN
  and LeakyReLU(0.2), then Linear -> logit. h = 256 in the seed. The seed's BatchNormalization(7)
  / (16) / (8) / (4) sizes and its Linear(h*4*4) input are wrong for 28 px; we normalise over
  channels and size the last layer for the 3 x 3 map D really produces (docs/seeds.md).
cgan-seed003: seed 003's conditional Keras model. G: label sub-network (32, 64, ELU) concatenated
  with z -> (1 x 1) -> ConvT 128 k5 -> ConvT 64 k5 s2 -> ConvT 32 k5 s2 (no bias) -> Conv 1 k2
  -> 28 x 28; D: Conv 32/64/96 k3 s2 "same" + ReLU, flattened, concatenated with the label
  sub-network's output, Dense 128 ReLU, Dense 1.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import MODELS
from .layers import LabelMLP, activation, initialise, need_labels


def _need_28(shape, family):
    if len(shape) != 3 or shape[1:] != (28, 28):
        raise ConfigError(f"model {family} is built for 28 x 28 images (C, 28, 28); this dataset gives {shape}. "
                          "Use model.name=dcgan for other sizes.")


class Seed000Generator(nn.Module):
    def __init__(self, z_dim, channels, hidden):
        super().__init__()
        self.hidden, self.n_classes = hidden, 0
        self.l1 = nn.Linear(z_dim, hidden * 7 * 7)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(hidden, hidden // 2, 4, 2, 1), nn.BatchNorm2d(hidden // 2), nn.ReLU(),
            nn.ConvTranspose2d(hidden // 2, channels, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z, c=None):
        need_labels(c, 0, "G")
        h = self.l1(z).view(-1, self.hidden, 7, 7)  # (N, h, 7, 7)
        return self.up(torch.relu(self.bn1(h)))  # (N, C, 28, 28)


class Seed000Discriminator(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.n_classes = 0
        layers, c = [], channels
        for c_out in (hidden, hidden * 2, hidden * 4):  # 28 -> 14 -> 7 -> 3
            layers += [nn.Conv2d(c, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
            c = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.fc4 = nn.Linear(hidden * 4 * 3 * 3, 1)

    def forward(self, x, c=None):
        need_labels(c, 0, "D")
        return self.fc4(self.features(x)).squeeze(1)  # (N,)


@MODELS.register("seed000")
def build_seed000(
    shape: tuple[int, ...],
    z_dim: int,
    n_classes: int = 0,
    hidden: int = 256,  # the seed's hidden_dim: G's first map and D's first conv have this many channels
    init: str = "lecun-normal",  # Chainer's default initialisation
):
    """Seed 000's Chainer DCGAN for 28 x 28 images (unconditional)."""
    _need_28(shape, "seed000")
    if n_classes:
        raise ConfigError("model seed000 is unconditional: set model.conditional=false, or use "
                          "model.name=dcgan / cgan-seed003 for a conditional model")
    channels = shape[0]
    return initialise(Seed000Generator(z_dim, channels, hidden), init), initialise(
        Seed000Discriminator(channels, hidden), init)


class Seed003Generator(nn.Module):
    def __init__(self, z_dim, channels, depth, n_classes, out_act):
        super().__init__()
        self.n_classes = n_classes
        self.label_net = LabelMLP(n_classes) if n_classes else None
        z_in = z_dim + (64 if n_classes else 0)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_in, depth, 5, 1), nn.ReLU(),  # 1 -> 5
            nn.ConvTranspose2d(depth, depth // 2, 5, 2), nn.ReLU(),  # 5 -> 13
            nn.ConvTranspose2d(depth // 2, depth // 4, 5, 2, bias=False), nn.ReLU(),  # 13 -> 29
            nn.Conv2d(depth // 4, channels, 2, 1, bias=False), activation(out_act),  # 29 -> 28
        )

    def forward(self, z, c=None):
        need_labels(c, self.n_classes, "G")
        if self.label_net is not None:
            z = torch.cat([z, self.label_net(c)], dim=1)  # (N, z_dim + 64)
        return self.net(z[:, :, None, None])  # (N, C, 28, 28)


class Seed003Discriminator(nn.Module):
    def __init__(self, channels, depth, n_classes):
        super().__init__()
        self.n_classes = n_classes
        self.features = nn.Sequential(
            nn.Conv2d(channels, depth, 3, 2, 1), nn.ReLU(),  # 28 -> 14
            nn.Conv2d(depth, depth * 2, 3, 2, 1), nn.ReLU(),  # 14 -> 7
            nn.Conv2d(depth * 2, depth * 3, 3, 2, 1), nn.ReLU(),  # 7 -> 4
            nn.Flatten(),
        )
        self.label_net = LabelMLP(n_classes) if n_classes else None
        n_in = depth * 3 * 4 * 4 + (64 if n_classes else 0)
        self.head = nn.Sequential(nn.Linear(n_in, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, x, c=None):
        need_labels(c, self.n_classes, "D")
        h = self.features(x)  # (N, 96 * 16)
        if self.label_net is not None:
            h = torch.cat([h, self.label_net(c)], dim=1)
        return self.head(h).squeeze(1)  # (N,)


@MODELS.register("cgan-seed003")
def build_cgan_seed003(
    shape: tuple[int, ...],
    z_dim: int,
    n_classes: int = 0,
    g_depth: int = 128,  # channels of G's first transposed conv (then /2, /4)
    d_depth: int = 32,  # channels of D's first conv (then x2, x3)
    g_out: str = "tanh",  # output activation; the seed's sigmoid gives [0, 1], our data range is [-1, 1]
    init: str = "default",
):
    """Seed 003's conditional GAN for 28 x 28 images (label sub-networks, concatenation)."""
    _need_28(shape, "cgan-seed003")
    channels = shape[0]
    G = Seed003Generator(z_dim, channels, g_depth, n_classes, g_out)
    D = Seed003Discriminator(channels, d_depth, n_classes)
    return initialise(G, init), initialise(D, init)
