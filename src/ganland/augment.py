"""Differentiable augmentation for the discriminator: DiffAugment (Zhao et al. 2020) and ADA's
adaptive probability (Karras et al. 2020).

Images are float tensors (N, C, H, W) in [-1, 1] (C = 1 or 3, float32 or bfloat16, either memory
format). Every op is differentiable w.r.t. the images, so G's step backpropagates through it.

Drawing is separate from applying: `draw_params(name, ...)` draws an op's random numbers and
`OPS[name](x, params)` applies them. `augment` draws, per op in policy order, first the op's
params and then one uniform per sample for the p-mask, always, whatever p or the data are; so the
generator's stream depends only on the policy and the global batch shape (resume and multi-process
runs stay exact). With shard=(rank, size) it draws for the whole global batch of N*size samples and
keeps this process's rows [rank*N, (rank+1)*N).

`AdaptiveAugment` is ADA's controller: it accumulates r_t = E[sign(D(x_real))] on the device and
moves p towards keeping r_t at a target.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import CheckpointError, ConfigError
from .registry import close_match_hint

OpFn = Callable[[Tensor, Tensor], Tensor]  # (x (N, C, H, W), params (N, k) float32) -> (N, C, H, W)

SHORTHANDS = {"color": ("brightness", "saturation", "contrast")}
_DEFAULT_RGB = ("translation", "cutout", "brightness", "saturation", "contrast")
_DEFAULT_GRAY = ("translation", "cutout", "brightness", "contrast")


def shift_extent(side: int) -> int:
    """Largest translation along a side: 1/8 of it, rounded half up, at least 1 pixel."""
    return max(1, int(side / 8 + 0.5))


# ---- drawing ---------------------------------------------------------------------------------


def _uniform(n: int, generator: torch.Generator) -> Tensor:
    return torch.rand((n, 1), generator=generator, device=generator.device, dtype=torch.float32)


def _integers(low: int, high: int, n: int, generator: torch.Generator) -> Tensor:
    """Integers in [low, high] inclusive, as float32 (n, 1)."""
    return torch.randint(low, high + 1, (n, 1), generator=generator, device=generator.device,
                         dtype=torch.float32)


def _draw_translation(n: int, height: int, width: int, g: torch.Generator) -> Tensor:
    sy, sx = shift_extent(height), shift_extent(width)
    return torch.cat([_integers(-sy, sy, n, g), _integers(-sx, sx, n, g)], dim=1)  # (n, 2) [dy, dx]


def _draw_cutout(n: int, height: int, width: int, g: torch.Generator) -> Tensor:
    return torch.cat([_integers(0, height - 1, n, g), _integers(0, width - 1, n, g)], dim=1)  # (n, 2) [cy, cx]


_DRAWS: dict[str, Callable[[int, int, int, torch.Generator], Tensor]] = {
    "translation": _draw_translation,
    "cutout": _draw_cutout,
    "brightness": lambda n, h, w, g: _uniform(n, g) - 0.5,  # b ~ U(-0.5, 0.5), (n, 1)
    "contrast": lambda n, h, w, g: _uniform(n, g) + 0.5,  # s ~ U(0.5, 1.5), (n, 1)
    "saturation": lambda n, h, w, g: _uniform(n, g) * 2.0,  # s ~ U(0, 2), (n, 1)
}


def draw_params(name: str, n: int, height: int, width: int, generator: torch.Generator) -> Tensor:
    """Op `name`'s random numbers for n samples of size height x width: float32 (n, k) on the
    generator's device. translation: [dy, dx] integers in [-s, s] (s = shift_extent of that side);
    cutout: [cy, cx] integer centre in [0, H) x [0, W); brightness: b; contrast, saturation: s."""
    if name not in _DRAWS:
        raise ConfigError(_unknown_op_message(name))
    return _DRAWS[name](n, height, width, generator)


# ---- applying --------------------------------------------------------------------------------


def _memory_format(x: Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _per_sample(params: Tensor, x: Tensor) -> Tensor:
    """Column 0 of params (N, k) as x's dtype and device, shaped (N, 1, 1, 1)."""
    return params[:, 0].to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def translation(x: Tensor, params: Tensor) -> Tensor:
    """Content moved by integer [dy, dx] per sample (out[i, j] = x[i - dy, j - dx]); vacated pixels 0."""
    n, c, h, w = x.shape
    sy, sx = shift_extent(h), shift_extent(w)
    shifts = params.to(device=x.device).round().long()
    dy, dx = shifts[:, 0:1], shifts[:, 1:2]  # (N, 1)
    padded = F.pad(x, (sx, sx, sy, sy))  # (N, C, H + 2sy, W + 2sx), zero border
    # Indices past the padding clamp onto the (zero) border, so any shift is safe.
    rows = (torch.arange(h, device=x.device) - dy + sy).clamp(0, h + 2 * sy - 1)  # (N, H)
    cols = (torch.arange(w, device=x.device) - dx + sx).clamp(0, w + 2 * sx - 1)  # (N, W)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * sx))  # (N, C, H, W + 2sx)
    out = out.gather(3, cols[:, None, None, :].expand(n, c, h, w))  # (N, C, H, W)
    return out.contiguous(memory_format=_memory_format(x))


def cutout(x: Tensor, params: Tensor) -> Tensor:
    """A (H//2) x (W//2) square centred at [cy, cx] per sample set to 0, clipped at the borders.
    The square's rows are [cy - (H//2)//2, cy - (H//2)//2 + H//2), its columns likewise."""
    _, _, h, w = x.shape
    ch, cw = h // 2, w // 2
    centre = params.to(device=x.device).round().long()
    top, left = centre[:, 0:1] - ch // 2, centre[:, 1:2] - cw // 2  # (N, 1)
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + ch)  # (N, H)
    in_cols = (cols >= left) & (cols < left + cw)  # (N, W)
    square = in_rows[:, None, :, None] & in_cols[:, None, None, :]  # (N, 1, H, W)
    return x.masked_fill(square, 0.0)


def brightness(x: Tensor, params: Tensor) -> Tensor:
    """x + b per sample."""
    return x + _per_sample(params, x)


def contrast(x: Tensor, params: Tensor) -> Tensor:
    """(x - mean) * s + mean per sample, mean over C, H, W."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    return (x - mean) * _per_sample(params, x) + mean


def saturation(x: Tensor, params: Tensor) -> Tensor:
    """(x - mean) * s + mean per sample, mean over the colour channels (RGB only)."""
    if x.shape[1] != 3:
        raise ConfigError(_saturation_message(x.shape[1]))
    mean = x.mean(dim=1, keepdim=True)  # (N, 1, H, W)
    return (x - mean) * _per_sample(params, x) + mean


OPS: dict[str, OpFn] = {
    "translation": translation,
    "cutout": cutout,
    "brightness": brightness,
    "saturation": saturation,
    "contrast": contrast,
}


# ---- policies --------------------------------------------------------------------------------


def _policy_words() -> list[str]:
    return sorted([*OPS, *SHORTHANDS, "default", "none"])


def _unknown_op_message(name: str) -> str:
    return (f"augment policy: unknown op {name!r}; known: {', '.join(_policy_words())} "
            f"(comma-separated, e.g. \"translation,cutout\").{close_match_hint(name, _policy_words())}")


def _saturation_message(channels: int) -> str:
    return (f"augment policy: \"saturation\" (also part of \"color\") needs colour images with 3 channels, "
            f"these have {channels}; leave it out, e.g. \"translation,cutout,brightness,contrast\" "
            f"(\"default\" does so for you).")


def parse_policy(text: str, channels: int) -> tuple[str, ...]:
    """The op names of a comma-separated policy, in order ("default" and "color" expanded);
    "" or "none" -> () (augmentation off). Names are case-insensitive; repeats are kept."""
    if not isinstance(text, str):
        raise ConfigError(f"augment policy must be a string such as \"translation,cutout\", got {text!r}.")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigError(f"augment policy: channels must be a positive integer (1 or 3), got {channels!r}.")
    words = [word.strip().lower() for word in text.split(",")]
    if words in ([""], ["none"]):
        return ()
    ops: list[str] = []
    for word in words:
        if word == "":
            raise ConfigError(f"augment policy {text!r} has an empty entry; separate op names by single "
                              f"commas, e.g. \"translation,cutout\".")
        if word == "none":
            raise ConfigError(f"augment policy {text!r}: \"none\" turns augmentation off and cannot be "
                              f"combined with ops; give \"none\" alone or leave it out.")
        if word == "default":
            ops.extend(_DEFAULT_RGB if channels == 3 else _DEFAULT_GRAY)
        elif word in SHORTHANDS:
            ops.extend(SHORTHANDS[word])
        elif word in OPS:
            ops.append(word)
        else:
            raise ConfigError(_unknown_op_message(word))
    if "saturation" in ops and channels != 3:
        raise ConfigError(_saturation_message(channels))
    return tuple(ops)


# ---- augment ---------------------------------------------------------------------------------


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    try:
        rank, size = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise ValueError(f"augment: shard must be a pair (rank, size) of integers, got {shard!r}") from None
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"augment: shard=(rank, size) needs size >= 1 and 0 <= rank < size, got {shard!r}")
    return rank, size


def augment(x: Tensor, ops: Union[str, Sequence[str]], p: float, generator: torch.Generator,
            shard: tuple[int, int] = (0, 1)) -> Tensor:
    """x (N, C, H, W) with each op of `ops` applied in order, each to each sample independently with
    probability p (samples not chosen are left exactly as they were). `ops` is a policy string or
    the names `parse_policy` returns. All random numbers come from `generator` (on x's device), the
    same draws whatever p and the data are; shard=(rank, size) draws for the global batch of
    N*size samples and uses rows [rank*N, (rank+1)*N). p == 0 returns x itself (after drawing)."""
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"augment: x must be a float tensor (N, C, H, W), got {got}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ConfigError(f"augment: probability p must be a number in [0, 1], got {p!r}; "
                          f"give e.g. p=1.0 for DiffAugment (always) or let AdaptiveAugment set it.")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"augment: generator must be a torch.Generator, got {type(generator).__name__} "
                         f"(the global RNG is never used, so draws repeat on resume)")
    if not _same_device(generator.device, x.device):
        raise ValueError(f"augment: the generator is on {generator.device} but x is on {x.device}; "
                         f"create it with torch.Generator(device=x.device)")
    rank, size = _check_shard(shard)
    n, c, h, w = x.shape
    names = parse_policy(ops, c) if isinstance(ops, str) else tuple(ops)
    for name in names:
        if name not in OPS:
            raise ConfigError(_unknown_op_message(name))
        if name == "saturation" and c != 3:
            raise ConfigError(_saturation_message(c))

    p = float(p)
    rows = slice(rank * n, (rank + 1) * n)
    out = x
    for name in names:
        params = draw_params(name, n * size, h, w, generator)[rows]  # (N, k) float32
        chosen = torch.rand(n * size, generator=generator, device=generator.device,
                            dtype=torch.float32)[rows] < p  # (N,) bool
        if p == 0.0:
            continue  # drawn, not applied
        applied = OPS[name](out, params)
        out = applied if p == 1.0 else torch.where(chosen.to(x.device).view(-1, 1, 1, 1), applied, out)
    if out is x:
        return x
    return out.contiguous(memory_format=_memory_format(x))


# ---- ADA -------------------------------------------------------------------------------------


class AdaptiveAugment:
    """ADA's controller of the augmentation probability p.

    `observe` accumulates sign(D(x_real)) on the device (no host synchronisation); `stats` gives
    [sign_sum, count] (float64 (2,)) to all-reduce across processes; `adjust(totals, images)` sets
    r_t = sign_sum / count and moves p by sign(r_t - target) * images / (kimg * 1000), in [0, 1].
    """

    def __init__(self, target: float, kimg: float, p: float = 0.0, *,
                 device: Optional[Union[torch.device, str]] = None):
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < target < 1.0:
            raise ConfigError(f"ADA target must be a number strictly between 0 and 1 (the wanted "
                              f"E[sign(D(real))]), got {target!r}; 0.6 is the ADA paper's value.")
        if isinstance(kimg, bool) or not isinstance(kimg, (int, float)) or not (kimg > 0 and math.isfinite(kimg)):
            raise ConfigError(f"ADA kimg must be a positive number (thousands of real images for p to "
                              f"go from 0 to 1), got {kimg!r}; 500 is the ADA paper's value.")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ConfigError(f"ADA initial p must be a number in [0, 1], got {p!r}; start at 0.0.")
        self.target = float(target)
        self.kimg = float(kimg)
        self.p = float(p)
        self.rt: Optional[float] = None
        self._acc = torch.zeros(2, dtype=torch.float64, device=device)  # [sign_sum, count]

    def observe(self, real_logits: Tensor) -> None:
        """Adds sign(real_logits) (any shape) to the accumulators, on their device, without syncing."""
        logits = real_logits.detach()
        if self._acc.device != logits.device:
            self._acc = self._acc.to(logits.device)
        self._acc[0].add_(torch.sign(logits).sum(dtype=torch.float64))
        self._acc[1].add_(logits.numel())  # numel is shape metadata: no sync

    def stats(self) -> Tensor:
        """A copy of [sign_sum, count] (float64 (2,)) since the last adjust, e.g. to all-reduce."""
        return self._acc.clone()

    def adjust(self, totals: Tensor, images: int) -> float:
        """Sets rt = sign_sum / count from totals [sign_sum, count], moves p by
        sign(rt - target) * images / (kimg * 1000) clamped to [0, 1], resets the accumulators and
        returns p. Nothing changes when count == 0."""
        if isinstance(images, bool) or not isinstance(images, int) or images < 0:
            raise ValueError(f"AdaptiveAugment.adjust: images must be a non-negative int (real images "
                             f"D saw since the last adjust), got {images!r}")
        values = totals.detach().double().cpu().tolist() if isinstance(totals, Tensor) else list(totals)
        if len(values) != 2:
            raise ValueError(f"AdaptiveAugment.adjust: totals must be [sign_sum, count], got {values!r}")
        sign_sum, count = float(values[0]), float(values[1])
        if count == 0:
            return self.p
        rt = sign_sum / count
        step = images / (self.kimg * 1000)
        direction = (rt > self.target) - (rt < self.target)
        self.p = min(1.0, max(0.0, self.p + direction * step))
        self.rt = rt
        self._acc.zero_()
        return self.p

    def state_dict(self) -> dict:
        """p, rt and the accumulators as plain Python numbers (reads the accumulators: one sync)."""
        sign_sum, count = self._acc.cpu().tolist()
        return {"p": self.p, "rt": self.rt, "sign_sum": sign_sum, "count": count}

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` gave; the accumulators stay on their current device."""
        try:
            p, rt = float(state["p"]), state["rt"]
            sign_sum, count = float(state["sign_sum"]), float(state["count"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"ADA state is missing or has a bad entry ({e!r}); expected keys "
                                  f"p, rt, sign_sum, count as written by AdaptiveAugment.state_dict") from None
        if not 0.0 <= p <= 1.0:
            raise CheckpointError(f"ADA state has p={p}, outside [0, 1]; the checkpoint is damaged")
        self.p = p
        self.rt = None if rt is None else float(rt)
        self._acc = torch.tensor([sign_sum, count], dtype=torch.float64, device=self._acc.device)
