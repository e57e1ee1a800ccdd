"""Starting a run folder and continuing one: `train` (a new run), `resume_trainer` / `resume` (the
newest checkpoint of a run, with the checks that keep a resumed run the same run)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

from ..config import Config, load_config, resumable_text, resume_changes, stop_keys, yaml_load
from ..errors import CheckpointError, ConfigError, GanlandError
from ..numpy_gan.train import is_numpy_run
from .checkpoint import latest_checkpoint, remove_temporary_files
from .distributed import World, start
from .loop import RunResult, Trainer

__all__ = ["new_run_dir", "train", "new_trainer", "resume_trainer", "resume", "RunResult", "Trainer"]


def new_run_dir(cfg: Config, out: Optional[str]) -> Path:
    """`out`, or runs/<recipe>-<YYYYmmdd-HHMMSS>; refuses to train into a non-empty folder."""
    if out is None:
        out = f"runs/{cfg.recipe or Path(cfg.data.name).name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(out)
    if path.exists() and any(path.iterdir()):
        raise ConfigError(f"run folder {path} already exists and is not empty; choose another --out, "
                          f"or continue it with --resume {path}")
    return path


def train(cfg: Config, out: Optional[str] = None, world: Optional[World] = None) -> RunResult:
    """Train a new run into `out` (default runs/<recipe>-<time>). Under torchrun every process
    calls this; rank 0 names the folder and tells the others."""
    return new_trainer(cfg, out, world).fit()


def new_trainer(cfg: Config, out: Optional[str] = None, world: Optional[World] = None) -> Trainer:
    """The Trainer of a new run (see `train`)."""
    world = world or start(cfg.train.device, cfg.train.dist_timeout)
    return Trainer(cfg, on_main(world, lambda: new_run_dir(cfg, out)), world=world)


def on_main(world: World, fn):
    """`fn()` run by rank 0 alone, its result (or its error) the same in every process."""
    outcome = None
    if world.main:
        try:
            outcome = ("value", fn())
        except GanlandError as e:
            outcome = ("error", type(e), str(e))
    outcome = world.agree(outcome)
    if outcome[0] == "error":
        raise outcome[1](outcome[2])
    return outcome[1]


def resume_trainer(run_dir: str | Path, overrides: Optional[dict] = None, world: Optional[World] = None) -> Trainer:
    """The Trainer of a run folder at its newest checkpoint, everything restored (weights,
    optimizers, counters, every random stream). `overrides` may change only the settings marked
    resumable (how long, how it reports, how fast) or restate a value unchanged; a stopping rule
    given is a total counted from the start of the run and replaces the run's own. Under torchrun
    rank 0 reads the checkpoint and sends it to the others (no shared file system needed)."""
    run_dir = Path(run_dir)
    overrides = dict(overrides or {})
    if world is None:
        saved = _saved_train_settings(run_dir)  # which backend (the run's device) and how long to wait
        world = start(overrides.get("train.device", saved.get("device", "auto")),
                      overrides.get("train.dist_timeout", saved.get("dist_timeout", 300.0)))
    ck = on_main(world, lambda: _newest(run_dir))
    tree = yaml_load(ck["config_yaml"], f"{ck['path']} config")
    cfg = load_config(tree, overrides)
    changed = resume_changes(load_config(tree), cfg)
    if changed:
        raise ConfigError(f"cannot change {'; '.join(changed)} when resuming; only {resumable_text()} may change "
                          "(docs/training.md). Start a new run to change the model, the data or the optimization")
    trainer = Trainer(cfg, run_dir, resume=ck, world=world)
    reached = trainer.reached() if any(k in stop_keys() for k in overrides) else None
    if reached:
        raise ConfigError(f"{run_dir} is already past {reached}: it has trained {trainer.step} steps, "
                          f"{trainer.epochs_done:.2f} epochs, {trainer.clock.total() / 60:.1f} minutes. A stopping rule "
                          "on resume is a total counted from the start of the run, not more on top; give a larger one")
    if world.main:
        # Unusable checkpoints newer than the one resumed from are moved aside (kept for inspection),
        # so they neither count among train.keep_checkpoints nor shadow the checkpoints written next.
        for bad_path in map(Path, ck["skipped"]):
            aside = bad_path.with_name(bad_path.name + ".unusable")
            bad_path.replace(aside)
            print(f"ganland: warning: moved the unusable checkpoint aside to {aside}", file=sys.stderr)
        remove_temporary_files(run_dir)  # of a checkpoint write a crash interrupted
    return trainer


def _saved_train_settings(run_dir: Path) -> dict:
    """The `train` section of a run's config.yaml, or {} where it cannot be read (no shared folder)."""
    try:
        tree = yaml_load((run_dir / "config.yaml").read_text(), "config.yaml")
        return tree.get("train") or {}
    except (OSError, GanlandError, AttributeError):
        return {}


def _newest(run_dir: Path) -> dict:
    if not run_dir.is_dir():
        raise CheckpointError(f"cannot resume {run_dir}: no such run folder")
    if is_numpy_run(run_dir):
        raise ConfigError(f"{run_dir} is a numpy-sine run: seed 002's NumPy engine trains in one go and keeps no "
                          "checkpoints to resume. Train a longer one: ganland numpy-sine --iterations N --out NEW_DIR")
    return latest_checkpoint(run_dir)


def resume(run_dir: str | Path, overrides: Optional[dict] = None, world: Optional[World] = None) -> RunResult:
    """Continue a run from its newest checkpoint (`resume_trainer`) until its stopping rule. A run
    that has already reached it is left as it is: the result says so (`finished_before`)."""
    trainer = resume_trainer(run_dir, overrides, world)
    if trainer.reached():
        return RunResult.of(trainer, finished_before=trainer.reached())
    return trainer.fit()
