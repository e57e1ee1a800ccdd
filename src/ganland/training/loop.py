"""The training loop: `Trainer` builds a run, orders its steps and decides when it stops; the
rest is handed to collaborators, one job each:

  step.py        one D step, one G step, the EMA update (the algorithm, no I/O)
  augmentation.py what D sees: differentiable augmentation, its adaptive probability (train.augment)
  batches.py     real batches from the uint8 store in a seeded order; labels for fake samples
  schedule.py    the learning rates, a pure function of the step
  stats.py       running means, stats.jsonl, the progress bar, trimming the files on resume; the clock
  pictures.py    fixed-noise samples, D's surface, training curves
  eval_hook.py   in-training scores (metrics.jsonl) and D's held-out report
  guard.py       divergence checks, and rollback to the newest checkpoint
  state.py       what a checkpoint holds: the run's whole state, every random stream
  interrupt.py   Ctrl-C / SIGTERM: stop after the current step
  autotune.py    threads and precision for this machine, timed on the run's own model
  tensorboard.py TensorBoard events (train.tensorboard)
  checkpoint.py  atomic, checksummed checkpoint files, and when to write them (Saver)

A run folder holds config.yaml (the resolved config, never changed by the run), stats.jsonl,
metrics.jsonl, samples/ and checkpoints/ (step_XXXXXXXXX.pt, each carrying its own config).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..build import build_dataset, build_loss, build_models, build_optimizer, check_config
from ..config import Config, stop_rules
from ..device import autocast_for, resolve_device
from ..errors import Interrupted
from ..generator import generate, sample_z
from .batches import RealBatches
from .checkpoint import Saver, atomic_write, latest_checkpoint, list_checkpoints
from .distributed import DistributedError, World
from .eval_hook import InTrainingEval, heldout_report
from .guard import DivergenceGuard, Guard, state_tensors
from .interrupt import StopRequest, explained, resume_command
from .pictures import Pictures
from .schedule import LearningRates, step_budget
from .augmentation import Augmenter
from .autotune import SpeedChoice, start_speed
from .state import load_run_state, run_state, seed_everything
from .tensorboard import TensorBoard
from .stats import Clock, RunLog
from .step import StepSettings, d_step, ema_update, g_step


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
    finished_before: str = ""  # a resumed run that had already reached its stopping rule: which ("5000 steps")
    is_image: bool = False  # whether the samples are images
    paired: bool = False  # an image-to-image run (data.degrade)

    @staticmethod
    def of(tr: "Trainer", samples: Optional[Path] = None, checkpoint: Optional[Path] = None,
           finished_before: str = "") -> "RunResult":
        """Where a trainer stands, as a result (the newest files on disk where none are given)."""
        last = tr.log.last or next((r for r in reversed(tr.log.rows()) if r.get("kind") == "train"), {})
        newest = list_checkpoints(tr.run_dir)
        return RunResult(tr.run_dir, tr.step, tr.epochs_done, tr.clock.total(), samples or tr.pictures.latest(),
                         checkpoint or (newest[0] if newest else None), last, finished_before,
                         bool(tr.train_set.is_image), tr.paired)


class Trainer:
    """Trains one configured GAN into a run folder: `Trainer(cfg, run_dir).fit()`."""

    def __init__(self, cfg: Config, run_dir: Path, resume: Optional[dict] = None, world: Optional[World] = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.world = world or World.single()  # several processes under torchrun: distributed.py
        t, sp = cfg.train, cfg.speed
        self.device = resolve_device(t.device)
        seed_everything(t.seed)
        self.train_set, self.test_set = build_dataset(cfg, "train"), build_dataset(cfg, "test")
        self.cond_shape = getattr(self.train_set, "cond_shape", None)  # image-to-image runs: their inputs' shape
        self.G, self.D = build_models(cfg, self.train_set.shape, self.train_set.n_classes, self.cond_shape)
        check_config(cfg, self.train_set, (self.G, self.D))
        self.world.local_batch(t.batch_size, getattr(self.D, "pack", 1))  # the global batch must split evenly
        self.n_classes = self.train_set.n_classes if cfg.model.conditional else 0
        self.channels_last = bool(self.train_set.is_image) if sp.channels_last is None else sp.channels_last
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        self.G.to(self.device, memory_format=layout)
        self.D.to(self.device, memory_format=layout)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if t.ema else None
        self.opt_G, self.opt_D = build_optimizer(self.G, cfg.optim.G), build_optimizer(self.D, cfg.optim.D)
        self.augmenter = Augmenter.of(t, self.train_set.shape[0], self.world, self.device) \
            if self.train_set.is_image else None
        self.settings = StepSettings(build_loss(cfg), cfg.optim.G, cfg.optim.D, cfg.loss.gp_weight,
                                     cfg.loss.gp_target, cfg.loss.r1_weight, autocast_for(sp.amp, self.device, self.train_set.is_image),
                                     self.world, cfg.loss.r2_weight, cfg.loss.cr_weight, self.augmenter,
                                     cfg.loss.l1_weight, cfg.loss.adv_weight, cfg.loss.ac_weight)
        self.reuse_fake = sp.reuse_fake and t.n_critic == 1
        # What the steps call: the models themselves, or their compiled versions (same parameters).
        self.G_step, self.D_step = (torch.compile(self.G), torch.compile(self.D)) if sp.compile else (self.G, self.D)

        # Random streams: noise (z, fake labels, penalty mixing) on the device; data order on the CPU.
        self.gen = torch.Generator(self.device).manual_seed(t.seed)
        self.batches = RealBatches(self.train_set, t.batch_size, torch.Generator().manual_seed(t.seed + 1),
                                   self.device, bool(self.n_classes), self.channels_last, self.world)
        self.step = self.d_steps = self.epoch = self.images = 0  # G steps, D steps, epochs done, real images shown
        self.clock = Clock()  # training wall-clock, earlier processes included
        self.saver = Saver(self.run_dir, t.keep_checkpoints, t.checkpoint_every, t.checkpoint_minutes)
        self._pending_eval = False  # an evaluation due at this step that a signal put off
        self.speed: Optional[SpeedChoice] = None  # threads and precision, chosen when training starts
        self._saved_speed: Optional[dict] = None  # the choice a resumed checkpoint recorded
        self._tensorboard: Optional[TensorBoard] = None  # train.tensorboard: the event writer, once training

        # The collaborators.
        self.log = RunLog(self.run_dir, self.where, not t.guard, self.world)
        checks = (DivergenceGuard(t.guard_saturation_steps, self.settings.loss.probabilistic, self.device)
                  if t.guard else None)
        self.guard = Guard(checks, t.guard_retries, self.run_dir, self.restore, self.log.write,
                           lambda text: self.log.say(text, err=True),
                           {"optim.G.lr": cfg.optim.G.lr, "optim.D.lr": cfg.optim.D.lr}, self.world,
                           lambda: self.world.agree(latest_checkpoint(self.run_dir) if self.world.main else None))
        self.budget = step_budget(t.steps, t.epochs, self.batches.per_epoch, t.n_critic)  # G steps; None = time only
        self.schedule = LearningRates({"G": (self.opt_G, cfg.optim.G), "D": (self.opt_D, cfg.optim.D)}, self.budget,
                                      t.minutes)
        self.pictures = Pictures(self.run_dir, cfg.recipe or cfg.data.name, self.train_set, self.test_set,
                                 self.n_classes, cfg.model.z_dim, cfg.model.z_prior, t.seed, self.D, self.device)
        self.evaluation = (InTrainingEval(cfg, self.test_set, self.n_classes, self.run_dir, self.world)
                           if cfg.eval.every else None)
        self.resumed_from = resume.get("path") if resume is not None else None  # the checkpoint file
        if resume is not None:
            self.load_state_dict(resume)

    # ---- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return run_state(self)

    def load_state_dict(self, ck: dict) -> None:
        load_run_state(self, ck)

    def restore(self, ck: dict) -> None:
        """Go back to a checkpoint's state (the guard's rollback): everything, and the files after it."""
        self.load_state_dict(ck)
        self.saver.forget()
        self.pictures.saved_step = None  # the steps ahead are trained (and drawn) again
        self.log.trim(self.step, self.epoch)  # what the diverged stretch logged
        if self._tensorboard is not None:  # and its events: a writer that purges them
            self._tensorboard.close()
            self._tensorboard = TensorBoard.attach(self)

    # ---- where the run is -------------------------------------------------------------------------

    @property
    def epochs_done(self) -> float:
        """Passes over the data so far, with the current epoch's fraction."""
        return self.epoch + self.batches.epoch_fraction

    def where(self) -> dict:
        return {"step": self.step, "epoch": self.epochs_done, "images": self.images, "seconds": self.clock.total()}

    def reached(self) -> Optional[str]:
        """The stopping rule the run has reached, in words ("2000 steps"), or None."""
        done = {"train.steps": self.step, "train.epochs": self.epochs_done + 1e-9,
                "train.minutes": self.clock.total() / 60}
        for key, limit in stop_rules(self.cfg).items():
            if done[key] >= limit:
                return f"{limit if isinstance(limit, int) else format(limit, 'g')} {key.split('.')[-1]}"
        return None

    # ---- what the collaborators are given ------------------------------------------------------

    def generate(self, z: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
        """G_ema (or G) in eval mode on fixed inputs; returns CPU float (N, *shape)."""
        return generate(self.G_ema if self.G_ema is not None else self.G, z, c, self.device)

    def heldout_report(self) -> dict:
        t = self.cfg.train
        if self.settings.adv_weight == 0:  # no D is trained: nothing to report
            return {}
        return heldout_report(self.D, self.settings.loss.d_real, self.train_set, self.test_set, t.heldout_batches,
                              t.batch_size, t.seed, self.device, bool(self.n_classes) or self.paired)

    @property
    def paired(self) -> bool:
        """An image-to-image run (data.degrade): c is each image's input, not a label."""
        return self.cond_shape is not None

    def _healthy(self, weights: bool) -> bool:
        """The guard's check of the steps since the last one (and, with `weights`, of every model and
        optimizer tensor); False when it rolled the run back."""
        tensors = state_tensors((self.G, self.D, self.G_ema), (self.opt_G, self.opt_D)) if weights else []
        return self.guard.healthy(self.log.window.sums, tensors, self.step, self.epoch)

    def _decide(self, stop: StopRequest) -> tuple[bool, bool, bool]:
        """(a stopping rule holds, a signal asks to stop, a checkpoint is late by the time rule), the
        same in every process: one small all-reduce when there are several (clocks and signals differ)."""
        flags = (self.reached() is not None, stop.signum is not None, self.saver.late())
        return tuple(self.world.any_rank(*flags)) if self.world.active else flags

    def _draw(self) -> Optional[Path]:
        """The pictures of this step (rank 0), from batch-norm statistics averaged over the processes."""
        self.world.average_buffers(self.G, self.D, self.G_ema)
        return self.pictures.save(self.step, self.generate, self.log.rows()) if self.world.main else None

    def _save(self) -> Path:
        """The checkpoint of this step, written by rank 0 once every process holds the same state
        (averaged batch-norm statistics, parameters checked to agree bit for bit)."""
        self.world.average_buffers(self.G, self.D, self.G_ema)
        problem = self.world.consistent(self.G, self.D, self.G_ema)
        if problem:
            raise DistributedError(f"at step {self.step}: {problem}; the newest checkpoint is the last good state")
        path = self.saver.save(self.step, self.state_dict) if self.world.main else None
        return self.world.agree(path)  # and nobody reads it before it is there

    def _evaluate(self) -> None:
        if self.evaluation is not None:
            self.world.average_buffers(self.G, self.D, self.G_ema)  # the generator in eval mode reads them
            self.log.say(self.evaluation(self.generate, self.step))
        self._pending_eval = False

    def _resume_command(self) -> str:
        return resume_command(self.run_dir, stop_rules(self.cfg), self.world)

    # ---- the loop -----------------------------------------------------------------------------------

    def fit(self) -> RunResult:
        """Train until a stopping rule holds or a signal asks to stop (Ctrl-C, SIGTERM: then the run
        finishes its step, saves, and raises Interrupted). An operating-system error on the way (a
        full disk, a read-only folder) stops the run with a CheckpointError naming the cause and the
        newest checkpoint, which is intact (checkpoint writes are atomic)."""
        with StopRequest() as stop, explained(self.run_dir, lambda: self.step, self._resume_command, stop):
            try:
                return self._fit(stop)
            finally:
                self.log.close()
                if self._tensorboard is not None:
                    self._tensorboard.close()

    def _fit(self, stop: StopRequest) -> RunResult:
        t, main = self.cfg.train, self.world.main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.run_dir / "config.yaml", self.cfg.to_yaml().encode("utf-8"))
        self.log.trim(self.step, self.epoch)
        if t.tensorboard and main:
            self._tensorboard = TensorBoard.attach(self)
        self.speed, self._watch = start_speed(self)  # set-up, not training time; before the first checkpoint
        self.clock.start()
        self.saver.last = time.monotonic()
        self.log.start(t.progress, self.budget, 60.0 * t.minutes if t.minutes else None)
        if self.guard.checks is not None:
            tensors = state_tensors((self.G, self.D, self.G_ema), (self.opt_G, self.opt_D))
            self.guard.check_start(self.log.window.sums, tensors, self.resumed_from)
            if self.world.agree(not list_checkpoints(self.run_dir)):
                self._save()  # a good state to go back to before the first regular one

        if self._pending_eval:  # the evaluation a signal put off when this checkpoint was saved
            self._evaluate()
        while True:  # one straight loop: one stop decision per iteration; a rollback restores and goes on
            reached, signalled, late = self._decide(stop)
            if (reached or signalled) and self._healthy(weights=True):  # the final state, checked before it is saved
                break
            if not (reached or signalled):
                self._train_one_step()
                if self.world.active:  # what every process decided together (an evaluation is a collective)
                    self._after_step(signalled, late)
                else:  # as things are now: a signal during the step puts off its evaluation
                    self._after_step(stop.signum is not None, None)

        self.log.close()
        interrupted = not reached  # by a signal, before the stopping rule
        samples = None if interrupted else self._draw()
        checkpoint = self._save()  # before the last log: a resumed run redoes this window
        if self.log.window.sums:
            self.log.log(partial=True)
        self.clock.stop()
        if interrupted:
            raise Interrupted(f"stopped by {stop.name or 'a signal to another process'} after step {self.step}; saved "
                              f"{checkpoint} and the statistics so far. Continue with `{self._resume_command()}`",
                              stop.signum or 15)
        return RunResult.of(self, samples, checkpoint)

    def _train_one_step(self) -> None:
        """n_critic discriminator steps, one generator step, the EMA update."""
        started = time.perf_counter()
        cfg, t = self.cfg, self.cfg.train
        self.schedule.apply(self.step, self.guard.lr_scale)
        want_norm = (self.step + 1) % t.log_every == 0
        x_fake = c = None
        for _ in range(t.n_critic):
            x, c, epoch_end = self.batches.next()  # this process's share of the global batch
            z = self.world.slice(sample_z(t.batch_size, cfg.model.z_dim, cfg.model.z_prior, self.gen, self.device))
            if self.reuse_fake:  # one G forward serves both steps
                with self.settings.precision():
                    x_fake = self.G_step(z, c)
            if self.settings.adv_weight > 0:
                out = d_step(self.G_step, self.D_step, self.opt_D, self.settings, x, c, z, c, self.gen, want_norm,
                             x_fake)
            else:  # loss.adv_weight=0: G learns from its L1 term alone, and D is not trained
                out = {}
            self.d_steps, self.images = self.d_steps + 1, self.images + t.batch_size
            if self.augmenter is not None:
                out.update(self.augmenter.stepped(t.batch_size))
            self.log.add(out, ("loss_D",) if out else ())
            if out:
                self.guard.observe(out)
            if epoch_end:
                self.epoch += 1
                self.world.average_buffers(self.D)  # D's held-out report runs in eval mode, on running statistics
                self.log.end_epoch(self.epoch, self.heldout_report(), say=self.train_set.finite)
        if x_fake is not None:
            out = g_step(self.G_step, self.D_step, self.opt_G, self.settings, None, c, want_norm, x_fake,
                         self.gen, x, c)
        else:
            z = self.world.slice(sample_z(t.batch_size, cfg.model.z_dim, cfg.model.z_prior, self.gen, self.device))
            # Image-to-image: G restores the inputs of the batch D just saw (its targets are x).
            c_fake = c if self.paired else self.batches.fake_labels(t.batch_size, self.n_classes, self.gen)
            out = g_step(self.G_step, self.D_step, self.opt_G, self.settings, z, c_fake, want_norm, None,
                         self.gen, x, c)
        self.log.add(out, ("loss_G", "l1") if "l1" in out else ("loss_G",))
        if self.G_ema is not None:
            ema_update(self.G_ema, self.G, t.ema)
        self.step += 1
        self.clock.stepped(self.step)
        self.log.progress.update(self.clock.total())
        self._watch.add(time.perf_counter() - started)

    def _after_step(self, stopping: bool, late: Optional[bool]) -> None:
        """What is due after this step: a log line, pictures, an evaluation (put off to the resumed
        run when a signal asks to stop: it can take minutes), a checkpoint (`late`: by the time rule)."""
        t, every = self.cfg.train, lambda n: n and self.step % n == 0
        if every(t.log_every):
            if not self._healthy(weights=False):
                return
            self.log.log()
            slow = self._watch.check_window()
            if slow:
                self.log.say(slow, err=True)
            if self.schedule.wants_estimate:  # train.minutes alone: fix the decay's horizon now (rank 0's clock)
                self.schedule.estimate_horizon(self.step, self.clock.total(), self.clock.per_step(self.step))
                self.schedule.start, self.schedule.horizon = self.world.agree((self.schedule.start,
                                                                               self.schedule.horizon))
                self.log.say(f"learning-rate decay over {self.schedule.horizon} steps (estimated for "
                             f"train.minutes={t.minutes:g})")
        if every(t.sample_every):
            self._draw()
        if self.evaluation is not None and every(self.cfg.eval.every):
            self._pending_eval = True
            if not stopping:
                self._evaluate()
        if self.saver.due(self.step, late) and self._healthy(weights=True):
            self._save()
