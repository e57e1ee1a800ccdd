"""A trained generator: noise, generation in batches, and loading one from a run or checkpoint.

This sits below the training loop, evaluation and the API (it imports none of them; reading
checkpoints comes from `training.checkpoint`, which imports nothing of the loop): `sample_z`
draws the noise every part of ganland uses, `generate` runs a generator on fixed inputs, and
`load` rebuilds the generator a checkpoint describes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from .build import build_models
from .config import Config, load_config, yaml_load
from .data import to_uint8
from .device import resolve_device
from .errors import CheckpointError, ConfigError
from .training.checkpoint import latest_checkpoint, load_checkpoint


def sample_z(n: int, z_dim: int, prior: str, generator: torch.Generator, device) -> torch.Tensor:
    """Noise (n, z_dim): N(0, I) for prior "normal", U(-1, 1) for "uniform"."""
    if prior == "uniform":
        return torch.rand(n, z_dim, generator=generator, device=device).mul_(2).sub_(1)
    return torch.randn(n, z_dim, generator=generator, device=device)


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, c: Optional[torch.Tensor], device, batch: int = 1000) -> torch.Tensor:
    """G in eval mode on fixed inputs z (N, z_dim) and labels c (N,) or None, `batch` at a time;
    returns CPU float (N, *shape) and leaves G in the mode it was in."""
    was_training = G.training
    G.eval()
    outs = []
    for i in range(0, len(z), batch):
        zi = z[i:i + batch].to(device)
        ci = c[i:i + batch].to(device) if c is not None else None
        outs.append(G(zi, ci).float().cpu())
    G.train(was_training)
    return torch.cat(outs)


@dataclass
class Generator:
    """A trained generator, ready to sample. Built by `ganland.load`."""

    G: nn.Module
    config: Config
    shape: tuple[int, ...]
    n_classes: int
    class_names: Optional[list[str]]
    is_image: bool
    step: int
    device: torch.device

    def sample(self, n: int, classes: int | list[int] | np.ndarray | None = None, seed: int = 0,
               batch_size: int = 1000) -> dict[str, np.ndarray]:
        """n samples with noise from `seed`.

        Images come back as {"images": uint8 (n, H, W, C)}, vectors as {"samples": float32 (n, D)}.
        Conditional models also return "labels" (n,): `classes` (one class, or one per sample),
        or, when None, every class in turn (balanced).
        """
        if n < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        labels = self._labels(n, classes)
        gen = torch.Generator(self.device).manual_seed(seed)
        outs = []
        with torch.no_grad():
            for i in range(0, n, batch_size):
                m = min(batch_size, n - i)
                z = sample_z(m, self.config.model.z_dim, self.config.model.z_prior, gen, self.device)
                c = labels[i:i + m].to(self.device) if labels is not None else None
                x = self.G(z, c).float()
                outs.append(to_uint8(x).permute(0, 2, 3, 1).cpu() if self.is_image else x.cpu())
        result = {"images" if self.is_image else "samples": torch.cat(outs).numpy()}
        if labels is not None:
            result["labels"] = labels.numpy().astype(np.int64)
        return result

    def _labels(self, n: int, classes) -> Optional[torch.Tensor]:
        if not self.n_classes:
            if classes is not None:
                raise ConfigError("this model is unconditional: sample it without a class")
            return None
        if classes is None:
            return torch.arange(n) % self.n_classes
        labels = torch.as_tensor(np.asarray(classes), dtype=torch.int64).reshape(-1)
        if labels.numel() == 1:
            labels = labels.expand(n).clone()
        if labels.numel() != n:
            raise ConfigError(f"got {labels.numel()} classes for {n} samples; give one class or one per sample")
        bad = labels[(labels < 0) | (labels >= self.n_classes)]
        if bad.numel():
            raise ConfigError(f"class {int(bad[0])} is out of range: this model has classes 0..{self.n_classes - 1}")
        return labels


def load(run_or_checkpoint: str | Path, device: str = "cpu", ema: bool = True) -> Generator:
    """The generator of a run folder's newest checkpoint (or of one checkpoint file).

    Uses the EMA generator when the run kept one and `ema` is true. Nothing is unpickled.
    """
    path = Path(run_or_checkpoint)
    if path.is_dir():
        ck = latest_checkpoint(path)
    elif path.is_file():
        ck = load_checkpoint(path)
    else:
        raise CheckpointError(f"{path} is neither a run folder nor a checkpoint file")
    cfg = load_config(yaml_load(ck["config_yaml"], f"{path} config"))
    try:
        info = ck["data_info"]
        shape, n_classes, step = tuple(int(n) for n in info["shape"]), int(info["n_classes"]), int(ck["counters"]["step"])
        is_image, class_names = bool(info["is_image"]), info.get("class_names")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{ck.get('path', path)}: damaged checkpoint contents ({type(e).__name__}: {e})") from None
    G, _ = build_models(cfg, shape, n_classes)
    state = ck["G_ema"] if (ema and ck.get("G_ema") is not None) else ck["G"]
    try:
        G.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{ck.get('path', path)}: weights do not fit the model its config describes "
                              f"(different model or ganland version?): {' '.join(str(e).split())[:300]}") from None
    dev = resolve_device(device)
    G.to(dev).eval()
    return Generator(G, cfg, shape, n_classes if cfg.model.conditional else 0, class_names, is_image, step, dev)
