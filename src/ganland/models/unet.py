"""Image-to-image models (pix2pix, Isola et al. 2017): a U-Net G and a PatchGAN D.

Used with a degradation (`data.degrade`): G maps an input image (N, C_in, H, W) to an output of
the target's shape (N, C, H, W); D judges (output, input) pairs patch by patch.

G (U-Net, Ronneberger et al. 2015): a stem (two conv3x3 at full size), `depth` levels down
(conv4x4 stride 2, then conv3x3; BN and LeakyReLU 0.2), and back up (nearest x2, conv3x3, the
skip of the same size concatenated, conv3x3; BN and ReLU), then conv1x1 and tanh. Widths double
at every level down from `g_width`, at most 8 g_width. Fully convolutional: any H, W divisible
by 2^depth. The noise z is not used (pix2pix found that G learns to ignore it); samples differ
through their inputs. Inputs with one channel more than the outputs are (image, mask), the layout
of the `mask` degradation: G's output then replaces only the missing pixels, and the known ones
are pasted back (`keep_known`, on by default), so G spends nothing on copying them.

D (PatchGAN): the output and the input stacked on channels, `d_layers` conv4x4 stride 2
(LeakyReLU 0.2, BN from the second on), one conv3x3 and a conv3x3 to one logit per patch. For
28 px images and d_layers 2 that is a 7x7 map of patch logits, each seeing 26x26 px; D returns
them flattened, (N * patches,), so every loss of ganland applies patch by patch (a pairing loss
pairs the same patch of the same pair) and the penalties see the sum over patches.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import ConfigError
from .base import MODELS
from .layers import initialise


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride, padding=(k - stride + 1) // 2 if stride == 2 else k // 2, bias=False)


def _bn(c: int, on: bool = True) -> nn.Module:
    return nn.BatchNorm2d(c) if on else nn.Identity()


def _need_input(c, who: str) -> None:
    if c is None:
        raise ValueError(f"{who} is an image-to-image model: pass the input images as c (N, C_in, H, W)")


class UNetGenerator(nn.Module):
    """Input images c (N, C_in, H, W) -> outputs (N, C_out, H, W) in [-1, 1]; z is accepted and ignored."""

    def __init__(self, c_in: int, c_out: int, width: int = 64, depth: int = 2, keep_known: bool = False):
        super().__init__()
        self.depth = depth
        self.keep_known = keep_known  # inputs (image, mask): outside the mask, the output is the input
        widths = [min(width * 2 ** i, 8 * width) for i in range(depth + 1)]
        lrelu = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.stem = nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), lrelu(),
                                  _conv(width, width, 3), _bn(width), lrelu())
        self.down = nn.ModuleList(
            nn.Sequential(_conv(widths[i], widths[i + 1], 4, 2), _bn(widths[i + 1]), lrelu(),
                          _conv(widths[i + 1], widths[i + 1], 3), _bn(widths[i + 1]), lrelu())
            for i in range(depth))
        self.up = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv(widths[i + 1], widths[i], 3),
                          _bn(widths[i]), nn.ReLU())
            for i in reversed(range(depth)))
        self.merge = nn.ModuleList(
            nn.Sequential(_conv(2 * widths[i], widths[i], 3), _bn(widths[i]), nn.ReLU())
            for i in reversed(range(depth)))
        self.head = nn.Conv2d(width, c_out, 1)

    def forward(self, z: Optional[torch.Tensor], c: Optional[torch.Tensor] = None) -> torch.Tensor:
        _need_input(c, "unet")
        h, w = c.shape[-2:]
        if h % 2 ** self.depth or w % 2 ** self.depth:
            raise ConfigError(f"this U-Net halves its input {self.depth} times, so image sides must be multiples of "
                              f"{2 ** self.depth}; got {h}x{w} px")
        skips = [self.stem(c)]
        for block in self.down:
            skips.append(block(skips[-1]))
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        out = torch.tanh(self.head(x))
        if self.keep_known:  # inpainting: only the missing pixels (mask 1) are G's; the rest is pasted back,
            m = c[:, -1:].float()  # in fp32 (under bf16 autocast too), so the known pixels come back exactly
            out = c[:, :-1].float() * (1 - m) + out.float() * m
        return out


class PatchDiscriminator(nn.Module):
    """(outputs x (N, C, H, W), inputs c (N, C_in, H, W)) -> patch logits (N * patches,)."""

    def __init__(self, c_x: int, c_in: int, width: int = 64, layers: int = 2, batch_norm: bool = True):
        super().__init__()
        blocks: list[nn.Module] = []
        c = c_x + c_in
        for i in range(layers):
            w = min(width * 2 ** i, 8 * width)
            blocks += [nn.Conv2d(c, w, 4, 2, 1, bias=i == 0 or not batch_norm), _bn(w, i > 0 and batch_norm),
                       nn.LeakyReLU(0.2)]
            c = w
        w = min(c * 2, 8 * width)
        blocks += [nn.Conv2d(c, w, 3, 1, 1, bias=not batch_norm), _bn(w, batch_norm), nn.LeakyReLU(0.2),
                   nn.Conv2d(w, 1, 3, 1, 1)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        _need_input(c, "patchgan")
        return self.net(torch.cat([x, c.to(x.dtype)], dim=1)).flatten()


def auto_depth(h: int, w: int, most: int = 3) -> int:
    """The number of halvings (at most `most`) the sides allow, at least 1."""
    depth = 0
    while depth < most and h % 2 ** (depth + 1) == 0 and w % 2 ** (depth + 1) == 0 and min(h, w) >> (depth + 1) >= 4:
        depth += 1
    return depth


@MODELS.register("unet", help="image-to-image: U-Net G and PatchGAN D (pix2pix), for data.degrade runs")
def build(
    shape: tuple[int, ...],
    z_dim: int,
    n_classes: int,
    cond_shape: Optional[tuple[int, ...]] = None,  # (fixed) the input images' shape, from the degradation
    g_width: int = 64,  # channels of G's full-size level (doubling at each level down)
    depth: Optional[int] = None,  # G's levels down; None = as many as the sides allow, up to 3 (28 px: 2)
    d_width: int = 64,  # channels of D's first layer
    d_layers: int = 2,  # D's stride-2 layers: patches of 2^d_layers px (28 px, 2: a 7x7 map)
    d_batch_norm: bool = True,  # batch norm in D (off for gradient penalties)
    init: str = "dcgan",  # weight initialisation: "dcgan" (pix2pix's N(0, 0.02)), "ortho", "default"...
    keep_known: bool = True,  # inputs with a mask channel (data.degrade=mask): G fills only the missing pixels
):
    """(U-Net G, PatchGAN D) for targets of `shape` (C, H, W) from inputs of `cond_shape`."""
    if cond_shape is None:
        raise ConfigError("model unet maps input images to output images: set data.degrade (downsample, mask or "
                          "noise) to make the inputs, or use a noise-to-image model (dcgan, resnet)")
    if n_classes:
        raise ConfigError("model unet is conditioned on its input image, not on class labels: set "
                          "model.conditional=false")
    if len(shape) != 3:
        raise ConfigError(f"model unet needs images (C, H, W); this dataset gives samples of shape {shape}")
    c, h, w = shape
    most = auto_depth(h, w)
    depth = most if depth is None else depth
    if depth < 1 or h % 2 ** depth or w % 2 ** depth:
        raise ConfigError(f"model.options.depth={depth} does not fit {h}x{w} px images: the sides must be "
                          f"multiples of 2^depth (here at most depth {most})")
    if d_layers < 1 or h % 2 ** d_layers or w % 2 ** d_layers:
        raise ConfigError(f"model.options.d_layers={d_layers} does not fit {h}x{w} px images: the sides must be "
                          f"multiples of 2^d_layers")
    if g_width < 1 or d_width < 1:
        raise ConfigError(f"model.options.g_width and d_width must be >= 1, got {g_width}, {d_width}")
    G = UNetGenerator(cond_shape[0], c, g_width, depth, keep_known and cond_shape[0] == c + 1)
    D = PatchDiscriminator(c, cond_shape[0], d_width, d_layers, d_batch_norm)
    return initialise(G, init), initialise(D, init)
