"""The training loop: owns devices, optimizers, EMA, schedules, logging, pictures, checkpoints.

A run folder holds:
  config.yaml          the fully resolved configuration
  stats.jsonl          one JSON line per `train.log_every` steps and one per finished epoch
  samples/             fixed-noise pictures (step_XXXXXXXXX.png and latest.png)
  checkpoints/         step_XXXXXXXXX.pt, each carrying its own config (newest `keep` kept)
"""
from __future__ import annotations

import copy
import dataclasses
import errno
import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..build import build_dataset, build_loss, build_models, build_optimizer, check_config
from ..config import Config, OptimConfig, load_config, yaml_load
from ..data import to_model_range, to_uint8
from ..errors import CheckpointError, ConfigError, DivergenceError
from ..evaluation import (Target, append_score, dataset_label, evaluate_samples, evaluator_for, load_extractor,
                          read_scores)
from ..viz import PLOTS, quality_curve, training_curves
from .checkpoint import (atomic_write, latest_checkpoint, list_checkpoints, remove_temporary_files,
                         save_checkpoint)
from .guard import DivergenceGuard, state_tensors
from .step import StepSettings, d_step, g_step


def _autocast(amp: str, device: torch.device) -> Optional[tuple[str, torch.dtype]]:
    """speed.amp -> (device type, dtype) for torch.autocast, or None for fp32.

    auto: bf16 on CUDA; fp32 on the CPU, where bf16 pays only with AVX-512 BF16 / AMX units
    (measured 10-20x slower than fp32 on an AVX2-only CPU: docs/performance.md).
    """
    if amp == "fp32" or (amp == "auto" and device.type != "cuda"):
        return None
    if device.type == "mps":
        raise ConfigError("speed.amp=bf16 is not supported on MPS; use speed.amp=fp32")
    return (device.type, torch.bfloat16)


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda, then mps, then cpu; anything else must be available as asked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA GPU is available here; use train.device=auto or cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("train.device is mps but MPS is not available here; use train.device=auto or cpu")
    return dev


def sample_z(n: int, z_dim: int, prior: str, generator: torch.Generator, device) -> torch.Tensor:
    """Noise (n, z_dim): N(0, I) for prior "normal", U(-1, 1) for "uniform"."""
    if prior == "uniform":
        return torch.rand(n, z_dim, generator=generator, device=device).mul_(2).sub_(1)
    return torch.randn(n, z_dim, generator=generator, device=device)


class RealBatches:
    """Endless real batches. Finite data: a fresh permutation per epoch, last partial batch
    dropped. Toy samplers: fresh draws, `epoch_size` samples counting as one epoch."""

    def __init__(self, dataset, batch_size: int, generator: torch.Generator, device: torch.device,
                 labels: bool = False):
        self.data, self.bs, self.gen, self.device = dataset, batch_size, generator, device
        if dataset.finite:
            if len(dataset) < batch_size:
                raise ConfigError(f"dataset {dataset.name!r} holds {len(dataset)} training samples, fewer than "
                                  f"train.batch_size={batch_size}; lower the batch size")
            self.x = dataset.x.to(device)
            self.y = dataset.y.to(device) if (labels and dataset.y is not None) else None
        self.per_epoch = max(1, len(dataset) // batch_size)
        self.pos = 0  # batches taken in the current epoch
        self.perm: Optional[torch.Tensor] = None

    def next(self) -> tuple[torch.Tensor, Optional[torch.Tensor], bool]:
        """(x (B, *shape) in model range, labels (B,) or None, whether this batch ends an epoch)."""
        if self.data.finite:
            if self.perm is None:
                self.perm = torch.randperm(len(self.data), generator=self.gen)
            idx = self.perm[self.pos * self.bs:(self.pos + 1) * self.bs].to(self.device)
            x, y = self._get(idx)
        else:
            x, y = self.data.draw(self.bs, self.gen).to(self.device, non_blocking=True), None
        self.pos += 1
        end = self.pos == self.per_epoch
        if end:
            self.pos, self.perm = 0, None
        return x, y, end

    def _get(self, idx):
        x = self.x[idx]
        x = to_model_range(x) if x.dtype == torch.uint8 else x.float()
        return x, (self.y[idx] if self.y is not None else None)

    def state_dict(self) -> dict:
        return {"pos": self.pos, "perm": self.perm, "gen": self.gen.get_state()}

    def load_state_dict(self, s: dict) -> None:
        self.pos, self.perm = int(s["pos"]), s["perm"]
        self.gen.set_state(s["gen"])


@dataclass
class RunResult:
    """What a finished training run left behind."""

    run_dir: Path
    step: int
    epoch: float
    seconds: float
    samples: Optional[Path]
    checkpoint: Optional[Path]
    last_stats: dict = field(default_factory=dict)


class _Means:
    """Running sums of detached scalar tensors; read (one host sync) only when asked."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def read(self) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = list(self.sums)
        vals = torch.stack([self.sums[k].float().cpu() for k in keys]).tolist()
        out = {k: v / self.counts[k] for k, v in zip(keys, vals)}
        self.sums, self.counts = {}, {}
        return out

    def state_dict(self) -> dict:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def load_state_dict(self, s: dict, device) -> None:
        self.sums = {k: v.to(device) for k, v in s["sums"].items()}
        self.counts = dict(s["counts"])


class _Progress:
    """tqdm bar over steps, or over seconds when the run is limited by time only."""

    def __init__(self, enabled: bool, steps_total: Optional[int], seconds_total: Optional[float], start_step: int,
                 start_seconds: float):
        self.bar = None
        self.by_time = steps_total is None and seconds_total is not None
        if not enabled:
            return
        from tqdm.auto import tqdm

        if self.by_time:
            self.bar = tqdm(total=round(seconds_total), initial=round(start_seconds), unit="s", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}s [{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=steps_total, initial=start_step, unit="step", dynamic_ncols=True)
        self.last_seconds = start_seconds

    def update(self, seconds: float) -> None:
        if self.bar is None:
            return
        if self.by_time:
            n = round(seconds) - self.bar.n
            if n > 0:
                self.bar.update(min(n, self.bar.total - self.bar.n))
        else:
            self.bar.update(1)

    def postfix(self, values: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)

    def write(self, text: str, err: bool = False) -> None:
        """A line above the bar (on stderr with `err`: warnings and the guard's reports)."""
        file = sys.stderr if err else sys.stdout
        if self.bar is not None:
            self.bar.write(text, file=file)
        else:
            print(text, file=file, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _rng_state() -> dict:
    np_state = np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return {
        "cuda": cuda,
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[0], random.getstate()[2]],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if s.get("cuda") is not None and torch.cuda.is_available() and len(s["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(s["cuda"])
    py = s["python"]
    random.setstate((py[-2], tuple(py[:-2]), py[-1]))
    n = s["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))


class Trainer:
    """Trains one configured GAN into a run folder. `Trainer(cfg, run_dir).fit()`."""

    def __init__(self, cfg: Config, run_dir: Path, resume: Optional[dict] = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        t = cfg.train
        self.device = resolve_device(t.device)
        # Global seeds first: model initialisation draws from the global generators.
        torch.manual_seed(t.seed)
        random.seed(t.seed)
        np.random.seed(t.seed % 2**32)

        self.train_set = build_dataset(cfg, "train")
        self.test_set = build_dataset(cfg, "test")
        self.G, self.D = build_models(cfg, self.train_set.shape, self.train_set.n_classes)
        check_config(cfg, self.train_set, (self.G, self.D))
        self.n_classes = self.train_set.n_classes if cfg.model.conditional else 0
        sp = cfg.speed
        if sp.threads:
            torch.set_num_threads(sp.threads)
        self.channels_last = bool(self.train_set.is_image) if sp.channels_last is None else sp.channels_last
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        self.G.to(self.device, memory_format=layout)
        self.D.to(self.device, memory_format=layout)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if t.ema else None
        self.opt_G = build_optimizer(self.G, cfg.optim.G)
        self.opt_D = build_optimizer(self.D, cfg.optim.D)
        self.settings = StepSettings(build_loss(cfg), cfg.optim.G, cfg.optim.D, cfg.loss.gp_weight,
                                     cfg.loss.gp_target, cfg.loss.r1_weight, _autocast(sp.amp, self.device))
        self.reuse_fake = sp.reuse_fake and t.n_critic == 1
        # What the steps call: the models themselves, or their compiled versions (same parameters).
        self.G_step, self.D_step = ((torch.compile(self.G), torch.compile(self.D)) if sp.compile
                                    else (self.G, self.D))

        # Random streams: noise and penalties on the device; data order on the CPU.
        self.gen = torch.Generator(self.device).manual_seed(t.seed)
        self.batches = RealBatches(self.train_set, t.batch_size, torch.Generator().manual_seed(t.seed + 1),
                                   self.device, labels=bool(self.n_classes))
        self.train_labels = self.batches.y if (self.n_classes and self.batches.data.finite) else None

        # What the pictures show: fixed noise (and labels), fixed real samples.
        plot = PLOTS.get(self.train_set.plot)
        n_fixed, self.fixed_c, self.grid_cols = plot.n, None, None
        if self.n_classes:  # one column per class (the first 10 classes), 8 rows
            self.grid_cols = min(self.n_classes, 10)
            n_fixed = 8 * self.grid_cols
            self.fixed_c = torch.arange(n_fixed) % self.grid_cols
        fixed = torch.Generator().manual_seed(t.seed + 3)
        self.fixed_z = sample_z(n_fixed, cfg.model.z_dim, cfg.model.z_prior, fixed, "cpu")
        self.plot = plot
        self.evaluator = InTrainingEval(cfg, self.test_set, self.n_classes) if cfg.eval.every else None

        self.step = 0  # generator steps done
        self.d_steps = 0  # discriminator steps done
        self.epoch = 0  # epochs finished
        self.images = 0  # real images shown to D
        self.seconds = 0.0  # training wall-clock before this process
        self.window, self.epoch_means = _Means(), _Means()
        self.last_stats: dict = {}
        self.guard = (DivergenceGuard(t.guard_saturation_steps, self.settings.loss.probabilistic, self.device)
                      if t.guard else None)
        self.guard_retries_used = 0  # rollbacks so far (kept in the checkpoint: the budget spans resumes)
        self._warned_non_finite = False
        self.resumed_from = resume.get("path") if resume is not None else None  # the checkpoint file
        if resume is not None:
            self._load_state(resume)

    # ---- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "ganland_version": __version__,
            "config_yaml": self.cfg.to_yaml(),
            "data_info": {"shape": list(self.train_set.shape), "n_classes": self.train_set.n_classes,
                          "class_names": list(self.train_set.class_names or []) or None,
                          "is_image": bool(self.train_set.is_image)},
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict() if self.G_ema is not None else None,
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "counters": {"step": self.step, "d_steps": self.d_steps, "epoch": self.epoch, "images": self.images,
                         "seconds": self.seconds + self._elapsed()},
            "rng": {"gen": self.gen.get_state(), "gen_device": self.device.type, **_rng_state()},
            "batches": self.batches.state_dict(),
            "window": self.window.state_dict(),
            "epoch_means": self.epoch_means.state_dict(),
            "guard": {"retries": self.guard_retries_used, **(self.guard.state_dict() if self.guard else {})},
        }

    def _load_state(self, ck: dict) -> None:
        try:
            self.G.load_state_dict(ck["G"])
            self.D.load_state_dict(ck["D"])
            if self.G_ema is not None:
                self.G_ema.load_state_dict(ck["G_ema"])
            self.opt_G.load_state_dict(ck["opt_G"])
            self.opt_D.load_state_dict(ck["opt_D"])
            c = ck["counters"]
            self.step, self.d_steps, self.epoch, self.images = (int(c["step"]), int(c["d_steps"]), int(c["epoch"]),
                                                                 int(c["images"]))
            self.seconds = float(c["seconds"])
            self._load_noise_stream(ck["rng"])
            _set_rng_state(ck["rng"])
            self.batches.load_state_dict(ck["batches"])
            self.window.load_state_dict(ck["window"], self.device)
            self.epoch_means.load_state_dict(ck["epoch_means"], self.device)
            guard = ck.get("guard") or {}  # absent in checkpoints written before the guard
            self.guard_retries_used = int(guard.get("retries", 0))
            if self.guard is not None:
                self.guard.load_state_dict(guard)
        except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise CheckpointError(f"checkpoint {ck.get('path', '')} does not fit this run (different model or "
                                  f"ganland version?): {type(e).__name__}: {' '.join(str(e).split())[:300]}"
                                  ) from None

    def _load_noise_stream(self, rng: dict) -> None:
        """The noise generator's state, or, when the run moves to another kind of device (its
        generators' states do not convert), a fresh stream seeded from (seed, step)."""
        saved = rng.get("gen_device")  # absent before 2026-11-23: then only a failed load tells
        if saved in (None, self.device.type):
            try:
                self.gen.set_state(rng["gen"])
                return
            except RuntimeError:
                if saved is not None:
                    raise
        self.gen.manual_seed(self.cfg.train.seed * 1_000_003 + self.step)
        print(f"ganland: warning: this run's noise stream was saved on another kind of device "
              f"({saved or 'unknown'}) than this one ({self.device.type}); it continues with a fresh stream "
              "seeded from the seed and step, so it is not bit-for-bit what an unmoved run would do",
              file=sys.stderr)

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0 if hasattr(self, "_t0") else 0.0

    # ---- pieces of the loop -------------------------------------------------------------------

    def _sample_labels(self, n: int) -> Optional[torch.Tensor]:
        """Labels for fake samples, drawn from the training labels' own frequencies."""
        if not self.n_classes:
            return None
        if self.train_labels is None:
            return torch.randint(self.n_classes, (n,), generator=self.gen, device=self.device)
        idx = torch.randint(len(self.train_labels), (n,), generator=self.gen, device=self.device)
        return self.train_labels[idx]

    @torch.no_grad()
    def generate(self, z: torch.Tensor, c: Optional[torch.Tensor], batch: int = 1000) -> torch.Tensor:
        """G_ema (or G) in eval mode on fixed inputs; returns CPU float (N, *shape)."""
        G = self.G_ema if self.G_ema is not None else self.G
        was_training = G.training
        G.eval()
        outs = []
        for i in range(0, len(z), batch):
            zi = z[i:i + batch].to(self.device)
            ci = c[i:i + batch].to(self.device) if c is not None else None
            outs.append(G(zi, ci).float().cpu())
        G.train(was_training)
        return torch.cat(outs)

    def save_samples(self) -> Path:
        fake = self.generate(self.fixed_z, self.fixed_c)
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{self.step:09d}{self.plot.suffix}"
        real = critic = None
        if self.train_set.is_image:
            fake_np = to_uint8(fake).numpy()
        else:
            fake_np = fake.numpy()
            real = self.test_set.draw(self.plot.n, torch.Generator().manual_seed(self.cfg.train.seed + 4)).numpy() \
                if not self.test_set.finite else self.test_set.x[: self.plot.n].float().numpy()
            if fake_np.shape[1] == 2 and not self.n_classes and getattr(self.D, "pack", 1) == 1:
                critic = self._critic_surface
        title = f"{self.cfg.recipe or self.cfg.data.name}: step {self.step}"
        self.plot.draw(path, fake_np, real, self.train_set, title, critic, self.grid_cols)
        shutil.copyfile(path, folder / f"latest{self.plot.suffix}")
        stats = self.run_dir / "stats.jsonl"
        if stats.is_file():  # the run's curves so far, beside its newest samples
            rows = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()]
            training_curves(rows, folder / "training.png", f"{self.cfg.recipe or self.cfg.data.name}: step {self.step}")
        return folder / f"latest{self.plot.suffix}"

    @torch.no_grad()
    def _critic_surface(self, pts: np.ndarray) -> np.ndarray:
        was = self.D.training
        self.D.eval()
        out = self.D(torch.from_numpy(pts).to(self.device)).float().cpu().numpy()
        self.D.train(was)
        return out

    @torch.no_grad()
    def heldout_report(self) -> dict:
        """Seed 000's per-epoch validation: D's real-data loss term on a fixed set of test
        batches, next to the same on a fixed set of training batches (D in eval mode).

        Only for finite datasets: a toy sampler draws every batch fresh, so it has no training
        set that D could overfit and no held-out split to compare with."""
        n = self.cfg.train.heldout_batches
        if n == 0 or not self.train_set.finite:
            return {}
        bs, out = self.cfg.train.batch_size, {}
        was = self.D.training
        self.D.eval()
        for name, data in (("heldout", self.test_set), ("train", self.train_set)):
            g = torch.Generator().manual_seed(self.cfg.train.seed + 2)
            total = 0.0
            idx = torch.randperm(len(data), generator=g)[: n * bs]
            chunks = idx.split(bs)
            for ix in chunks:
                x, y = data.get(ix)
                c = y.to(self.device) if self.n_classes else None
                total += float(self.settings.loss.d_real(self.D(x.to(self.device), c)))
            total /= len(chunks)
            out[f"{name}_loss_D_real"] = total
        self.D.train(was)
        return out

    @property
    def epochs_done(self) -> float:
        """Passes over the data so far, with the current epoch's fraction."""
        return self.epoch + self.batches.pos / self.batches.per_epoch

    def progress_fraction(self) -> float:
        """How much of the run is done, 0..1: the largest share among the stopping rules."""
        t, shares = self.cfg.train, [0.0]
        if t.steps is not None:
            shares.append(self.step / t.steps)
        if t.epochs is not None:
            shares.append(self.epochs_done / t.epochs)
        if t.minutes is not None:
            shares.append((self.seconds + self._elapsed()) / (60.0 * t.minutes))
        return min(1.0, max(shares))

    def _schedule(self) -> None:
        """Set each optimizer's learning rate for the coming step (decay: linear)."""
        frac = None
        for opt, o in ((self.opt_G, self.cfg.optim.G), (self.opt_D, self.cfg.optim.D)):
            if o.decay == "linear":
                frac = self.progress_fraction() if frac is None else frac
                for group in opt.param_groups:
                    group["lr"] = o.lr * (1.0 - frac)

    def _want_stop(self) -> Optional[str]:
        t = self.cfg.train
        if t.steps is not None and self.step >= t.steps:
            return f"{t.steps} steps"
        if t.epochs is not None and self.epochs_done >= t.epochs - 1e-9:
            return f"{t.epochs:g} epochs"
        if t.minutes is not None and self.seconds + self._elapsed() >= 60.0 * t.minutes:
            return f"{t.minutes:g} minutes"
        return None

    def _steps_total(self) -> Optional[int]:
        t = self.cfg.train
        totals = []
        if t.steps is not None:
            totals.append(t.steps)
        if t.epochs is not None:
            totals.append(math.ceil(t.epochs * self.batches.per_epoch / t.n_critic))
        return min(totals) if totals else None

    def _write_stats(self, record: dict) -> None:
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _checkpoint(self) -> Path:
        return save_checkpoint(self.run_dir, self.step, self.state_dict(), self.cfg.train.keep_checkpoints)

    def _write_config(self) -> None:
        atomic_write(self.run_dir / "config.yaml", self.cfg.to_yaml().encode("utf-8"))

    # ---- divergence guard (docs/robustness.md) ------------------------------------------------

    def _guard_failed(self, progress: _Progress, weights: bool) -> bool:
        """Check the steps since the last log (and, with `weights`, every model and optimizer
        tensor); on a problem roll back to the newest checkpoint and return True."""
        if self.guard is None:
            return False
        tensors = state_tensors((self.G, self.D, self.G_ema), (self.opt_G, self.opt_D)) if weights else []
        problem = self.guard.check(self.window.sums, tensors)
        if problem is None:
            return False
        self._roll_back(problem, progress)
        return True

    def _roll_back(self, problem: str, progress: _Progress) -> None:
        """Return to the newest checkpoint (every one passed the guard) with both learning rates
        halved, or stop with a DivergenceError when train.guard_retries are used up."""
        t, detected, used = self.cfg.train, self.step, self.guard_retries_used
        lrs = f"optim.G.lr={self.cfg.optim.G.lr:g}, optim.D.lr={self.cfg.optim.D.lr:g}"
        if used >= t.guard_retries:
            good = list_checkpoints(self.run_dir)
            self._write_stats({"kind": "guard", "step": detected, "epoch": self.epoch, "problem": problem,
                               "action": "stopped"})
            tried = (f"The guard rolled back {used} time(s) to the last good checkpoint, halving both learning "
                     f"rates each time (now {lrs}), and train.guard_retries={t.guard_retries} are used up."
                     if used else f"train.guard_retries is 0, so the guard stops without retrying ({lrs}).")
            raise DivergenceError(
                f"training diverged at step {detected}: {problem}. {tried} "
                + (f"The newest checkpoint {good[0]} holds the last good state; nothing non-finite was saved. "
                   if good else "")
                + "Start a new run with lower learning rates, a gradient penalty (loss.gp_weight), R1 "
                  "(loss.r1_weight) or model.spectral_norm=true.")
        ck = latest_checkpoint(self.run_dir)
        self._load_state(ck)  # weights, optimizers, counters, every random stream, data order
        self._t0 = time.monotonic()
        self.guard_retries_used = used + 1
        G_lr, D_lr = 0.5 * self.cfg.optim.G.lr, 0.5 * self.cfg.optim.D.lr
        self.cfg = dataclasses.replace(self.cfg, optim=OptimConfig(G=dataclasses.replace(self.cfg.optim.G, lr=G_lr),
                                                                   D=dataclasses.replace(self.cfg.optim.D, lr=D_lr)))
        self.settings.opt_G_cfg, self.settings.opt_D_cfg = self.cfg.optim.G, self.cfg.optim.D
        for opt, lr in ((self.opt_G, G_lr), (self.opt_D, D_lr)):
            for group in opt.param_groups:
                group["lr"] = lr  # linear decay rescales from the new base in _schedule
        self._write_config()
        self._trim_stats()  # what the diverged stretch logged
        action = (f"rolled back to step {self.step} ({Path(ck['path']).name}), retry {used + 1} of "
                  f"{t.guard_retries} with both learning rates halved ({lrs} -> optim.G.lr={G_lr:g}, "
                  f"optim.D.lr={D_lr:g})")
        self._write_stats({"kind": "guard", "step": self.step, "epoch": self.epoch, "detected_at": detected,
                           "problem": problem, "action": action})
        progress.write(f"ganland: guard: step {detected}: {problem}; {action}", err=True)

    # ---- the loop -----------------------------------------------------------------------------

    def fit(self) -> RunResult:
        """Train until a stopping rule holds. An operating-system error on the way (a full disk, a
        read-only folder) stops the run with a CheckpointError naming the cause and the newest
        checkpoint, which is intact (checkpoint writes are atomic)."""
        try:
            return self._fit()
        except OSError as e:  # stats.jsonl, pictures, metrics; checkpoint writes raise CheckpointError
            code = f" [{errno.errorcode[e.errno]}]" if e.errno in errno.errorcode else ""
            where = f" ({e.filename})" if e.filename else ""
            newest = list_checkpoints(self.run_dir)
            kept = (f"the newest checkpoint {newest[0]} is intact: fix the cause and continue with "
                    f"`ganland train --resume {self.run_dir}`" if newest else "no checkpoint was written yet")
            raise CheckpointError(f"training stopped at step {self.step}: {e.strerror or e}{code}{where}; "
                                  f"{kept}") from e

    def _fit(self) -> RunResult:
        cfg, t = self.cfg, self.cfg.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._trim_stats()
        self._t0 = time.monotonic()
        last_ckpt_time = self._t0
        progress = _Progress(t.progress, self._steps_total(), 60.0 * t.minutes if t.minutes else None,
                             self.step, self.seconds)
        samples, ckpt_path = None, None
        try:
            if self.guard is not None:
                # The state training starts from is what a rollback returns to: it must be good. (A
                # resumed checkpoint can hold NaN/inf only if it was saved while train.guard was off.)
                problem = self.guard.check(self.window.sums, state_tensors((self.G, self.D, self.G_ema),
                                                                           (self.opt_G, self.opt_D)))
                if problem is not None and self.resumed_from is None:
                    raise DivergenceError(f"the initial state is already broken: {problem}")
                if problem is not None:
                    raise DivergenceError(
                        f"the checkpoint {self.resumed_from} this run resumes from is already broken: {problem}. It "
                        "was saved while train.guard was off, so the guard has no good state to roll back to; resume "
                        "with train.guard=false or start a new run")
                if not list_checkpoints(self.run_dir):
                    ckpt_path = self._checkpoint()  # a good state to roll back to before the first regular one
            stop = self._want_stop()
            while True:
                while stop is None:
                    self._train_one_step(progress)
                    if self.step % t.log_every == 0:
                        if self._guard_failed(progress, weights=False):
                            stop = self._want_stop()
                            continue
                        self._log(progress)
                    if t.sample_every and self.step % t.sample_every == 0:
                        samples = self.save_samples()
                    if self.evaluator is not None and self.step % cfg.eval.every == 0:
                        self._evaluate(progress)
                    stop = self._want_stop()
                    now = time.monotonic()
                    if stop is None and ((t.checkpoint_every and self.step % t.checkpoint_every == 0) or
                                         (t.checkpoint_minutes and now - last_ckpt_time >= 60 * t.checkpoint_minutes)):
                        if self._guard_failed(progress, weights=True):
                            stop = self._want_stop()
                            continue
                        ckpt_path, last_ckpt_time = self._checkpoint(), now
                if not self._guard_failed(progress, weights=True):  # the final state, before it is saved
                    break
                stop = self._want_stop()
        finally:
            progress.close()
        samples = self.save_samples()
        ckpt_path = self._checkpoint()  # before the last log: a resumed run completes this window
        if self.window.sums:
            self._log(None, partial=True)
        self.seconds += self._elapsed()
        del self._t0
        seconds = self.seconds
        return RunResult(self.run_dir, self.step, self.epochs_done,
                         seconds, samples, ckpt_path, self.last_stats)

    def _train_one_step(self, progress: _Progress) -> None:
        """n_critic discriminator steps, one generator step, the EMA update."""
        cfg, t = self.cfg, self.cfg.train
        self._schedule()
        want_norm = (self.step + 1) % t.log_every == 0
        x_fake = None
        for _ in range(t.n_critic):
            x, c, epoch_end = self.batches.next()
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            z = sample_z(len(x), cfg.model.z_dim, cfg.model.z_prior, self.gen, self.device)
            if self.reuse_fake:  # one G forward serves both steps
                with self.settings.precision():
                    x_fake = self.G_step(z, c)
            out = d_step(self.G_step, self.D_step, self.opt_D, self.settings, x, c, z, c, self.gen,
                         want_norm, x_fake)
            self.d_steps += 1
            self.images += len(x)
            self.window.add(out)
            if self.guard is not None:
                self.guard.observe(out)
            self.epoch_means.add({k: out[k] for k in ("loss_D",)})
            if epoch_end:
                self.epoch += 1
                self._end_epoch(progress)
        if x_fake is not None:
            out = g_step(self.G_step, self.D_step, self.opt_G, self.settings, None, c, want_norm, x_fake)
        else:
            z = sample_z(t.batch_size, cfg.model.z_dim, cfg.model.z_prior, self.gen, self.device)
            out = g_step(self.G_step, self.D_step, self.opt_G, self.settings, z,
                         self._sample_labels(t.batch_size), want_norm)
        self.window.add(out)
        self.epoch_means.add({"loss_G": out["loss_G"]})
        if self.G_ema is not None:
            self._update_ema()
        self.step += 1
        progress.update(self.seconds + self._elapsed())

    def _evaluate(self, progress: Optional[_Progress]) -> None:
        score = self.evaluator(self.generate, self.step)
        append_score(self.run_dir / "metrics.jsonl", score)
        history = [s for s in read_scores(self.run_dir / "metrics.jsonl") if s.source.startswith("in-training")]
        (self.run_dir / "samples").mkdir(exist_ok=True)
        quality_curve(history, self.run_dir / "samples" / "quality.png")
        shown = {k: v for k, v in score.metrics.items() if not isinstance(v, list)}
        text = "  ".join(f"{k} {v:.4g}" for k, v in list(shown.items())[:6])
        if progress is not None:
            progress.write(f"eval step {self.step}: {text}")

    def _update_ema(self) -> None:
        decay = self.cfg.train.ema
        with torch.no_grad():
            ema_p = list(self.G_ema.parameters())
            torch._foreach_lerp_(ema_p, list(self.G.parameters()), 1.0 - decay)
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)

    def _log(self, progress: Optional[_Progress], partial: bool = False) -> None:
        values = self.window.read()
        if self.guard is None and not self._warned_non_finite and not all(map(math.isfinite, values.values())):
            self._warned_non_finite = True
            message = (f"ganland: warning: non-finite losses or gradients by step {self.step} and train.guard is "
                       "off: the run is training on NaN/inf")
            if progress is not None:
                progress.write(message, err=True)
            else:
                print(message, file=sys.stderr)
        record = {"kind": "train", "step": self.step, "epoch": round(self.epochs_done, 4),
                  "images": self.images, "seconds": round(self.seconds + self._elapsed(), 2), **values}
        if partial:  # the run ended inside a logging window: means over fewer steps
            record["partial"] = True
        self._write_stats(record)
        self.last_stats = record
        if progress is not None:
            progress.postfix({k: values[k] for k in ("loss_D", "loss_G", "D_real", "D_fake") if k in values})

    def _end_epoch(self, progress: _Progress) -> None:
        means = self.epoch_means.read()
        report = self.heldout_report()
        record = {"kind": "epoch", "epoch": self.epoch, "step": self.step, "images": self.images,
                  "seconds": round(self.seconds + self._elapsed(), 2),
                  **{f"epoch_{k}": v for k, v in means.items()}, **report}
        self._write_stats(record)
        parts = [f"epoch {self.epoch}", f"step {self.step}"]
        parts += [f"{k} {means[k]:.4f}" for k in sorted(means)]
        parts += [f"{k} {v:.4f}" for k, v in report.items()]
        progress.write("  ".join(parts))

    def _trim_stats(self) -> None:
        """On resume, drop the stats and in-training scores written after the checkpoint."""

        def keep_stat(rec: dict) -> bool:
            step = rec.get("step", 0)
            if rec.get("partial"):  # the resumed run logs this window in full
                return False
            return step < self.step or (step == self.step and (rec.get("kind") == "train" or rec["epoch"] <= self.epoch))

        def keep_score(rec: dict) -> bool:
            return not (rec.get("source", "").startswith("in-training") and (rec.get("step") or 0) > self.step)

        _filter_jsonl(self.run_dir / "stats.jsonl", keep_stat)
        _filter_jsonl(self.run_dir / "metrics.jsonl", keep_score)


def _filter_jsonl(path: Path, keep) -> None:
    """Rewrite a JSON-lines file with the records `keep` accepts (and without broken lines)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if (rec := _json_or_none(line)) is not None and keep(rec)]
    atomic_write(path, "".join(line + "\n" for line in lines).encode("utf-8"))  # a kill mid-rewrite loses nothing


def _json_or_none(line: str) -> Optional[dict]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:  # e.g. the last line of a process killed while writing it
        return None
    return rec if isinstance(rec, dict) else None


class InTrainingEval:
    """The cheap metrics on a fixed set of generated samples, every `eval.every` steps.

    Uses its own fixed noise (eval.seed), so it changes nothing in the training's random streams.
    """

    def __init__(self, cfg: Config, test_set, n_classes: int):
        e = cfg.eval
        self.target = Target(test_set, dataset_label(cfg), tuple(test_set.shape))
        self.evaluator = evaluator_for(self.target)  # fails now, not mid-run, when there are no metrics
        self.extractor = (load_extractor(test_set.name, e.feature_net, e.inception_weights)
                          if self.evaluator == "images" else None)
        gen = torch.Generator().manual_seed(e.seed)
        self.z = sample_z(e.n_samples, cfg.model.z_dim, cfg.model.z_prior, gen, "cpu")
        self.c = torch.arange(e.n_samples) % n_classes if n_classes else None
        self.cfg = cfg

    def __call__(self, generate, step: int):
        x = generate(self.z, self.c)
        samples = to_uint8(x).permute(0, 2, 3, 1).numpy() if self.evaluator == "images" else x.numpy()
        labels = self.c.numpy() if self.c is not None else None
        score = evaluate_samples(samples, self.target, self.cfg.eval.seed, labels, self.cfg.eval.full,
                                 source=f"in-training, step {step}", extractor=self.extractor)
        score.step = step
        return score


def new_run_dir(cfg: Config, out: Optional[str]) -> Path:
    """`out`, or runs/<recipe>-<YYYYmmdd-HHMMSS>; refuses to train into a non-empty folder."""
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = f"runs/{cfg.recipe or Path(cfg.data.name).name}-{stamp}"
    path = Path(out)
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"run folder {path} already exists and is not empty; choose another --out, "
                          f"or continue it with --resume {path}")
    return path


def train(cfg: Config, out: Optional[str] = None) -> RunResult:
    """Train a new run into `out` (default runs/<recipe>-<time>)."""
    return Trainer(cfg, new_run_dir(cfg, out)).fit()


STOP_KEYS = ("train.steps", "train.epochs", "train.minutes")
RESUMABLE_KEYS = STOP_KEYS + ("train.progress", "train.device", "train.log_every", "train.sample_every",
                              "train.checkpoint_every", "train.checkpoint_minutes", "train.keep_checkpoints",
                              "train.guard", "train.guard_retries", "train.guard_saturation_steps",
                              "eval.every", "eval.n_samples", "eval.seed", "eval.feature_net",
                              "eval.inception_weights", "eval.full")


def resume(run_dir: str | Path, overrides: Optional[dict] = None) -> RunResult:
    """Continue a run from its newest checkpoint with everything restored (weights, optimizers,
    counters, every random stream). `overrides` may change only how long and how it reports."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"cannot resume {run_dir}: no such run folder")
    ck = latest_checkpoint(run_dir)
    tree = yaml_load(ck["config_yaml"], f"{ck['path']} config")
    overrides = dict(overrides or {})
    bad = [k for k in overrides if k not in RESUMABLE_KEYS]
    if bad:
        raise ConfigError(f"cannot change {', '.join(bad)} when resuming (only {', '.join(RESUMABLE_KEYS)}); "
                          "start a new run to change the model or the data")
    if any(k in overrides for k in STOP_KEYS):
        for k in STOP_KEYS:  # a new stopping rule replaces the old one
            overrides.setdefault(k, None)
    cfg = load_config(tree, overrides)
    trainer = Trainer(cfg, run_dir, resume=ck)
    reached = trainer._want_stop() if any(overrides.get(k) is not None for k in STOP_KEYS) else None
    if reached:
        raise ConfigError(
            f"{run_dir} has already trained {reached} ({trainer.step} steps, "
            f"{trainer.epochs_done:.2f} epochs, "
            f"{trainer.seconds / 60:.1f} minutes): a stopping rule on resume is a total counted from the start of "
            "the run, not more on top; give a larger one")
    # Unusable checkpoints newer than the one resumed from are moved aside (kept for inspection),
    # so they neither count among train.keep_checkpoints nor shadow the checkpoints written next.
    for bad_path in map(Path, ck["skipped"]):
        aside = bad_path.with_name(bad_path.name + ".unusable")
        bad_path.replace(aside)
        print(f"ganland: warning: moved the unusable checkpoint aside to {aside}", file=sys.stderr)
    remove_temporary_files(run_dir)  # of a checkpoint write a crash interrupted
    return trainer.fit()
