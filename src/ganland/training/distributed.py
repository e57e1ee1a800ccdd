"""Several processes, one run: data-parallel training under `torchrun` (docs/distributed.md).

Every process is the same program. The global batch (`train.batch_size`), its noise, labels,
penalty mixing weights and data order are drawn in full by every process from the run's seeded
generators, and each process takes its slice (`World.slice`): the random streams, and so the
checkpoints, do not depend on the number of processes. After each backward pass the gradients
are averaged across processes by hand (flattened, one all-reduce, divided: `average_gradients`),
before clipping and the optimizer step. A DDP wrapper would fight the trainer twice: its hooks
fire on every backward through a module, so freezing D for the G step and differentiating
through D's gradients for the penalties both need workarounds (no_sync, static graphs), while
the hand-made average is just a call after `backward`.

Rank 0 alone writes files; what ends or rewinds the run is decided once for all (`agree`,
`any_rank`); a lost process makes every collective fail within `train.dist_timeout` seconds,
and the run stops with a DistributedError instead of hanging.

With one process (no torchrun) `World.single()` makes every call here a no-op.
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import nn

from ..errors import GanlandError

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets
_joined = False  # whether this process joined a process group (start): it then ends by `exit_now`


class DistributedError(GanlandError):
    """Another training process stopped or cannot be reached."""


@dataclass
class World:
    """This process's place among the run's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @staticmethod
    def single() -> "World":
        return World()

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files and speaks on the console."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    # ---- the global batch ---------------------------------------------------------------------

    def local_batch(self, batch_size: int, pack: int = 1) -> int:
        """This process's share of the global batch (a ConfigError when it does not divide)."""
        if batch_size % self.size:
            raise_config(f"train.batch_size={batch_size} does not split over {self.size} processes: give a "
                         f"multiple of {self.size} (e.g. {max(self.size, batch_size // self.size * self.size)})")
        local = batch_size // self.size
        if pack > 1 and local % pack:
            raise_config(f"train.batch_size={batch_size} over {self.size} processes leaves {local} samples each, "
                         f"not a multiple of model.options.pack={pack}: give a multiple of {pack * self.size}")
        return local

    def slice(self, x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """This process's rows of a tensor drawn for the whole global batch (first dimension)."""
        if x is None or not self.active:
            return x
        n = len(x) // self.size
        return x[self.rank * n:(self.rank + 1) * n]

    # ---- collectives (no-ops in one process) -------------------------------------------------

    def average_gradients(self, module: nn.Module) -> None:
        """Every parameter's gradient replaced by its mean over the processes (one all-reduce)."""
        if not self.active:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        _collective(dist.all_reduce, flat)
        flat.div_(self.size)
        torch._foreach_copy_(grads, [t.view_as(g) for t, g in zip(flat.split([g.numel() for g in grads]), grads)])

    def average_buffers(self, *modules: Optional[nn.Module]) -> None:
        """Batch-norm running statistics (every floating buffer) averaged over the processes:
        each saw only its slice of the batches."""
        if not self.active:
            return
        for m in modules:
            buffers = [b for b in m.buffers() if b.is_floating_point()] if m is not None else []
            if buffers:
                flat = torch.cat([b.reshape(-1) for b in buffers])
                _collective(dist.all_reduce, flat)
                flat.div_(self.size)
                torch._foreach_copy_(buffers, [t.view_as(b) for t, b in
                                               zip(flat.split([b.numel() for b in buffers]), buffers)])

    def mean_of(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Running sums of logged values, averaged over the processes (one all-reduce)."""
        if not self.active or not sums:
            return sums
        keys = list(sums)
        flat = torch.stack([sums[k].detach().float().reshape(()) for k in keys])
        _collective(dist.all_reduce, flat)
        flat.div_(self.size)
        return {k: flat[i] for i, k in enumerate(keys)}

    def total(self, t: torch.Tensor) -> torch.Tensor:
        """`t` summed over the processes (one all-reduce; `t` itself when there is one)."""
        if not self.active:
            return t
        t = t.to(_device()).clone()
        _collective(dist.all_reduce, t)
        return t

    def any_rank(self, *flags: bool) -> list[bool]:
        """Each flag true on every process when it is true on any (one small all-reduce)."""
        if not self.active:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=_device())
        _collective(dist.all_reduce, t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def agree(self, value: Any) -> Any:
        """Rank 0's `value` on every process (a run folder name, a checkpoint, a decision)."""
        if not self.active:
            return value
        box = [value]
        _collective(dist.broadcast_object_list, box, src=0)
        return box[0]

    def first_of(self, value: Any) -> Any:
        """The first non-None `value` of the processes, in rank order, on every process."""
        if not self.active:
            return value
        values: list = [None] * self.size
        _collective(dist.all_gather_object, values, value)
        return next((v for v in values if v is not None), None)

    def gather(self, value: Any) -> list:
        """Every process's `value` (any picklable object), in rank order, on every process."""
        if not self.active:
            return [value]
        values: list = [None] * self.size
        _collective(dist.all_gather_object, values, value)
        return values

    def chunk(self, n: int) -> slice:
        """This process's contiguous share of n items (the first ones get one more when n does not divide)."""
        bounds = [r * n // self.size for r in range(self.size + 1)]
        return slice(bounds[self.rank], bounds[self.rank + 1])

    def gather_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Every process's rows (equal counts), concatenated in rank order, on every process."""
        if not self.active:
            return x
        parts = [torch.empty_like(x) for _ in range(self.size)]
        _collective(dist.all_gather, parts, x.contiguous())
        return torch.cat(parts)

    def barrier(self) -> None:
        if self.active:
            _collective(dist.barrier)

    def consistent(self, *modules: Optional[nn.Module]) -> Optional[str]:
        """None when every process holds the same parameters, bit for bit; else what differs.
        Compares a checksum per module (its parameters' bytes, as float64 sums of two views)."""
        if not self.active:
            return None
        sums = []
        for m in modules:
            params = [p.detach().double().reshape(-1) for p in m.parameters()] if m is not None else []
            flat = torch.cat(params) if params else torch.zeros(1, dtype=torch.float64)
            weights = torch.arange(1, len(flat) + 1, dtype=torch.float64, device=flat.device)
            sums += [flat.sum(), (flat * weights).sum()]
        mine = torch.stack(sums).to(_device())
        theirs = mine.clone()
        _collective(dist.broadcast, theirs, src=0)
        differ = bool(self.any_rank(not torch.equal(mine, theirs))[0])
        return "the processes' parameters differ (a rank trained on something the others did not)" if differ \
            else None


class _Sharded:
    """A feature network whose `extract` splits the images over the processes, each featurising
    its contiguous share, and gathers the features in order: the one-process result (the networks
    run sample by sample in eval mode, so batching changes nothing)."""

    def __init__(self, extractor, world: World):
        self._extractor, self._world = extractor, world

    def __getattr__(self, name: str):  # name, sha256, n_classes, class_names, ...
        return getattr(self._extractor, name)

    def extract(self, images, batch_size: int = 500, device="cpu", progress: str = ""):
        import numpy as np

        from ..metrics.features import as_nchw_uint8

        x = as_nchw_uint8(images)
        feats, probs = self._extractor.extract(x[self._world.chunk(len(x))], batch_size, device, progress)
        parts = self._world.gather((feats, probs))
        features = np.concatenate([f for f, _ in parts])
        return features, (np.concatenate([p for _, p in parts]) if parts[0][1] is not None else None)


def sharded(extractor, world: World):
    """`extractor` itself in one process; several share its work (`_Sharded`)."""
    return _Sharded(extractor, world) if world.active else extractor


def raise_config(message: str) -> None:
    from ..errors import ConfigError

    raise ConfigError(message)


def _device() -> torch.device:
    """Where this backend's collectives want small tensors: the GPU for NCCL, the CPU for Gloo."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _collective(fn, *args, **kwargs):
    """Run a collective; a process that died or hangs becomes one clear error."""
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, dist.DistError) as e:
        if isinstance(e, GanlandError):
            raise
        raise DistributedError(f"lost contact with the other training processes ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:200]}): one of them stopped or crashed; see its "
                               "output above") from None


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device_name: str, timeout_s: float) -> World:
    """The World of this process: one process without torchrun; under torchrun, the process group
    (Gloo on the CPU, NCCL on CUDA) joined with a timeout, and this process's GPU chosen."""
    if not under_torchrun():
        return World.single()
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise_config(f"WORLD_SIZE is set but {', '.join(missing)} are not: start several processes with torchrun, "
                     "e.g. torchrun --standalone --nproc-per-node=2 -m ganland train RECIPE (docs/distributed.md)")
    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        global _joined
        try:
            dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as e:
            raise DistributedError(f"could not join the other training processes: {e}") from None
        _joined = True
    return World(dist.get_rank(), dist.get_world_size(), local_rank,
                 int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size())))


def finish(world: World) -> None:
    """Leave the process group (torchrun waits for every process to end)."""
    if world.active and dist.is_initialized():
        world.barrier()  # every process at the end first: Gloo aborts a process whose peers left while it wound down
        dist.destroy_process_group()


def joined() -> bool:
    """Whether this process joined a process group (under torchrun): its command ends by `exit_now`."""
    return _joined


def exit_now(code: int) -> None:
    """End a process that joined a process group with `code`, skipping the interpreter's teardown.

    Gloo's worker threads outlive `destroy_process_group`: one may still be dropping its last
    finished collective, and with it tensors that Python made, when Python finalizes. Freeing those
    needs the GIL, a thread that asks for the GIL during finalization is ended in the middle of C++
    code, and the process aborts (SIGABRT, "terminate called without an active exception") after
    all its work is done: torchrun then calls the whole run failed (seen about once in 100 runs on 2
    busy cores). Everything ganland writes is closed by then, so the process flushes its output
    and ends at once, as `os._exit` does, with no teardown for a late thread to trip over."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader that went away
            pass
    os._exit(code)
