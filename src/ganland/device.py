"""Where and in what precision the models run: device names and mixed precision."""
from __future__ import annotations

from typing import Optional

import torch

from .errors import ConfigError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda, then mps, then cpu; anything else must be available as asked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA GPU is available here; use train.device=auto or cpu")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError("train.device is mps but MPS is not available here; use train.device=auto or cpu")
    return dev


def autocast_for(amp: str, device: torch.device, is_image: bool = True) -> Optional[tuple[str, torch.dtype]]:
    """speed.amp -> (device type, dtype) for torch.autocast, or None for fp32.

    auto: bf16 on CUDA for image models; fp32 on the CPU, where bf16 pays only with AVX-512 BF16 /
    AMX units (measured 10-20x slower than fp32 on an AVX2-only CPU: docs/performance.md), and fp32
    for vector data (the toy mixtures) everywhere: bf16 keeps 8 significant bits, a step of 0.03 at
    the grid's corners (+-4) where its modes are 0.05 wide, and it cost the grid 7 points of
    high-quality samples (0.70 -> 0.63) where the timing chose it.
    """
    if amp == "fp32" or (amp == "auto" and (device.type != "cuda" or not is_image)):
        return None
    if device.type == "mps":
        raise ConfigError("speed.amp=bf16 is not supported on MPS; use speed.amp=fp32")
    return (device.type, torch.bfloat16)
