"""Multilayer perceptrons for vector data: the 1-D normal (seed 003), sine signals (seed 002),
2-D mixtures (PacGAN's toy setups)."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import MODELS
from .layers import LabelMLP, activation, initialise, need_labels


def _stack(widths: list[int], act: str, batch_norm: bool) -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        layers.append(nn.Linear(w_in, w_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(w_out))
        layers.append(activation(act))
    return layers, widths[-1]


class LatentComponents(nn.Module):
    """z (N, z_dim) -> [e_k, z[:, 1:]] (N, dim + z_dim - 1): z's first coordinate picks one of K learned
    vectors e_k, each with probability 1 / K, the rest stays continuous noise.

    A G of continuous noise maps one connected set onto the data, so between separate modes it must
    spend some of its mass on the paths that join them: the off-mode "bridges" that cap the share of
    sharp samples on the 2-D mixtures. With a discrete code, G is in effect K generators that share
    all but their input (as in MGAN, Hoang et al. 2018, without its classifier): each code can sit on
    one mode with nothing in between. k = floor(K F(z_0)) with F the prior's CDF, so z keeps its
    prior (N(0, I) or U(-1, 1)) and sampling, seeds and checkpoints work as for any G. Neighbouring
    values of z_0 pick neighbouring codes, which need not be neighbouring modes: an interpolation
    jumps where k changes, and truncation (which narrows z_0) uses the middle codes only."""

    def __init__(self, n: int, dim: int, prior: str):
        super().__init__()
        self.n, self.prior = n, prior
        self.codes = nn.Embedding(n, dim)
        nn.init.normal_(self.codes.weight)  # N(0, 1), the scale of the noise beside it

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.prior == "uniform":
            u = (z[:, 0] + 1) / 2  # U(-1, 1) -> U(0, 1)
        else:
            u = 0.5 * (1 + torch.erf(z[:, 0] / 2 ** 0.5))  # standard normal CDF
        k = (u * self.n).long().clamp_(0, self.n - 1)  # (N,)
        return torch.cat([self.codes(k), z[:, 1:]], dim=1)


class MLPGenerator(nn.Module):
    """z (N, z_dim) [+ labels (N,)] -> x (N, out_dim)."""

    def __init__(self, z_dim, out_dim, hidden, act, out_act, batch_norm, n_classes=0, components=0,
                 component_dim=16, prior="normal"):
        super().__init__()
        self.n_classes = n_classes
        self.label_net = LabelMLP(n_classes) if n_classes else None
        self.components = LatentComponents(components, component_dim, prior) if components else None
        w_in = (z_dim - 1 + component_dim if components else z_dim) + (self.label_net.out_features if n_classes else 0)
        layers, w = _stack([w_in, *hidden], act, batch_norm)
        self.net = nn.Sequential(*layers, nn.Linear(w, out_dim), activation(out_act))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        need_labels(c, self.n_classes, "G")
        if self.components is not None:
            z = self.components(z)  # (N, component_dim + z_dim - 1)
        if self.label_net is not None:
            z = torch.cat([z, self.label_net(c)], dim=1)  # (N, ... + 64)
        return self.net(z)


class FourierFeatures(nn.Module):
    """x (N, d) -> [x, sin(2 pi x B), cos(2 pi x B)] (N, d + 2n), B (d, n) ~ N(0, scale^2) fixed.

    Tancik et al. 2020: an MLP on raw low-dimensional coordinates learns smooth functions first and
    sharp ones very slowly; on random Fourier features it can resolve detail of about 1 / scale at
    once. For D on the 2-D mixtures, whose modes are 0.01-0.05 wide: it tells a sample 0.2 off a
    mode from one on it, and G's samples are pulled onto the modes. B is a buffer (saved in the
    checkpoint), drawn from torch's generator, which the run's seed has set."""

    def __init__(self, in_dim: int, n: int, scale: float):
        super().__init__()
        self.register_buffer("B", torch.randn(in_dim, n) * scale)
        self.out_features = in_dim + 2 * n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = (2 * torch.pi) * (x @ self.B)  # (N, n)
        return torch.cat([x, torch.sin(proj), torch.cos(proj)], dim=1)


class MLPDiscriminator(nn.Module):
    """x (N, in_dim) [+ labels (N,)] -> logits (N,), or (N / pack,) when D judges packs.

    pack > 1 is PacGAN (Lin et al. 2018): D sees `pack` samples side by side and judges them
    together, so it can tell a collapsed or too-narrow G from the data.
    """

    def __init__(self, in_dim, hidden, act, n_classes=0, pack=1, fourier=0, fourier_scale=1.0):
        super().__init__()
        self.n_classes, self.pack = n_classes, pack
        self.label_net = LabelMLP(n_classes) if n_classes else None
        self.features = FourierFeatures(in_dim, fourier, fourier_scale) if fourier else None
        per_sample = self.features.out_features if fourier else in_dim
        w_in = per_sample * pack + (self.label_net.out_features if n_classes else 0)
        layers, w = _stack([w_in, *hidden], act, batch_norm=False)
        self.net = nn.Sequential(*layers, nn.Linear(w, 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        need_labels(c, self.n_classes, "D")
        if self.features is not None:
            x = self.features(x)  # (N, in_dim + 2 * fourier)
        if self.pack > 1:
            if x.shape[0] % self.pack:
                raise ValueError(f"D packs {self.pack} samples: the batch size ({x.shape[0]}) must be a multiple")
            x = x.reshape(x.shape[0] // self.pack, -1)  # (N / pack, pack * in_dim)
        if self.label_net is not None:
            x = torch.cat([x, self.label_net(c)], dim=1)
        return self.net(x).squeeze(1)  # (N,) or (N / pack,)


@MODELS.register("mlp")
def build_mlp(
    shape: tuple[int, ...],
    z_dim: int,
    n_classes: int = 0,
    g_hidden: tuple[int, ...] = (64, 64),  # widths of G's hidden layers (seed 003: 64, 64)
    d_hidden: tuple[int, ...] = (32,),  # widths of D's hidden layers (seed 003: 32)
    g_act: str = "relu",  # G's hidden activation
    d_act: str = "relu",  # D's hidden activation (seed 002: leaky_relu)
    g_out: str = "identity",  # G's output activation: "identity" for unbounded data, "tanh" for [-1, 1]
    g_batch_norm: bool = False,  # batch norm after G's hidden linear layers (PacGAN's G)
    init: str = "default",  # "default" (PyTorch), "seed002-uniform" or "dcgan"
    pack: int = 1,  # samples D judges together (PacGAN); 1 = ordinary D
    d_fourier: int = 0,  # random Fourier features of D's input (Tancik et al. 2020); 0 = raw coordinates
    d_fourier_scale: float = 1.0,  # their frequencies' standard deviation (cycles per unit of the data)
    g_components: int = 0,  # K > 0: z's first coordinate picks one of K learned codes (LatentComponents); 0 = off
    g_component_dim: int = 16,  # the codes' width
    z_prior: str = "normal",  # set by the builder from model.z_prior: how z_0 maps to a code
):
    """MLP G and D for vector data (N, D); labels enter through seed 003's condition sub-network."""
    if len(shape) != 1:
        raise ConfigError(f"model mlp needs vector data (N, D); this dataset gives samples of shape {shape}. "
                          "Use model.name=dcgan for images.")
    if pack < 1 or (pack > 1 and n_classes):
        raise ConfigError(f"model.options.pack must be 1 or more, and 1 for conditional models; got {pack}")
    if d_fourier < 0 or d_fourier_scale <= 0:
        raise ConfigError(f"model.options.d_fourier must be 0 or more and d_fourier_scale above 0; got "
                          f"{d_fourier} and {d_fourier_scale}")
    if g_components < 0 or g_component_dim < 1 or (g_components and z_dim < 2):
        raise ConfigError(f"model.options.g_components must be 0 (off) or more, with g_component_dim 1 or more and "
                          f"model.z_dim 2 or more (z's first coordinate picks the code, the rest stays noise); got "
                          f"g_components={g_components}, g_component_dim={g_component_dim}, z_dim={z_dim}")
    (dim,) = shape
    G = MLPGenerator(z_dim, dim, list(g_hidden), g_act, g_out, g_batch_norm, n_classes, g_components,
                     g_component_dim, z_prior)
    D = MLPDiscriminator(dim, list(d_hidden), d_act, n_classes, pack, d_fourier, d_fourier_scale)
    return initialise(G, init), initialise(D, init)
