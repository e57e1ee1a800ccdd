"""The real-data batches: the dataset held once on the device (uint8 for images), its sampling
order, and the labels that fake samples are generated for."""
from __future__ import annotations

from typing import Optional

import torch

from ..data import to_model_range
from ..errors import ConfigError
from .distributed import World


class RealBatches:
    """Endless real batches. Finite data: a fresh permutation per epoch (drawn from `generator`,
    on the CPU), the last partial batch dropped. Toy samplers: fresh draws, `epoch_size` samples
    counting as one epoch. `state_dict` holds the position, the permutation and the generator, so a
    resumed run sees the same batches.

    batch_size is the global batch; with several processes (`world`) each gets its slice of it,
    and the order is the same whatever their number."""

    def __init__(self, dataset, batch_size: int, generator: torch.Generator, device: torch.device,
                 labels: bool = False, channels_last: bool = False, world: Optional[World] = None):
        self.data, self.bs, self.gen, self.device = dataset, batch_size, generator, device
        self.channels_last, self.world = channels_last, world or World.single()
        self.y: Optional[torch.Tensor] = None  # training labels on the device, when conditional
        if dataset.finite:
            if len(dataset) < batch_size:
                raise ConfigError(f"dataset {dataset.name!r} holds {len(dataset)} training samples, fewer than "
                                  f"train.batch_size={batch_size}; lower the batch size")
            self.x = dataset.x.to(device)  # uint8 (N, C, H, W) for images: 4x less memory than float
            self.y = dataset.y.to(device) if (labels and dataset.y is not None) else None
        # Image-to-image (data.degrade): each batch's inputs made on the device from its targets, with
        # the randomness (holes, noise) drawn for the whole global batch by the data-order generator.
        self.degradation = getattr(dataset, "degradation", None)
        self.per_epoch = max(1, len(dataset) // batch_size)
        self.pos = 0  # batches taken in the current epoch
        self.perm: Optional[torch.Tensor] = None

    def next(self) -> tuple[torch.Tensor, Optional[torch.Tensor], bool]:
        """(x (b, *shape) in model range, c, whether this batch ends an epoch); c is the labels (b,)
        of conditional runs, the inputs (b, *cond_shape) of image-to-image runs, else None; b is
        this process's share of the global batch."""
        if self.data.finite:
            if self.perm is None:
                self.perm = torch.randperm(len(self.data), generator=self.gen)
            idx = self.world.slice(self.perm[self.pos * self.bs:(self.pos + 1) * self.bs]).to(self.device)
            x = self.x[idx]
            x = to_model_range(x) if x.dtype == torch.uint8 else x.float()
            y = self.y[idx] if self.y is not None else None
            if self.degradation is not None:
                r = self.degradation.draw(self.bs, tuple(x.shape[1:]), self.gen)  # the global batch's, on the CPU
                y = self.degradation.apply(x, self.world.slice(r).to(self.device) if r is not None else None)
        else:  # the whole global batch is drawn, so the stream moves on alike in every process
            x, y = self.world.slice(self.data.draw(self.bs, self.gen)).to(self.device, non_blocking=True), None
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
            if self.degradation is not None:
                y = y.contiguous(memory_format=torch.channels_last)
        self.pos += 1
        end = self.pos == self.per_epoch
        if end:
            self.pos, self.perm = 0, None
        return x, y, end

    @property
    def epoch_fraction(self) -> float:
        """How far into the current epoch the batches are, 0..1."""
        return self.pos / self.per_epoch

    def fake_labels(self, n: int, n_classes: int, generator: torch.Generator) -> Optional[torch.Tensor]:
        """Labels (n,) for fake samples, drawn with `generator` from the training labels' own
        frequencies (uniform over the classes for data without stored labels); None when
        unconditional (n_classes 0). n is the global batch: this process gets its slice."""
        if not n_classes:
            return None
        if self.y is None:
            return self.world.slice(torch.randint(n_classes, (n,), generator=generator, device=self.device))
        idx = torch.randint(len(self.y), (n,), generator=generator, device=self.device)
        return self.world.slice(self.y[idx])

    def state_dict(self) -> dict:
        return {"pos": self.pos, "perm": self.perm, "gen": self.gen.get_state()}

    def load_state_dict(self, s: dict) -> None:
        self.pos, self.perm = int(s["pos"]), s["perm"]
        self.gen.set_state(s["gen"])
