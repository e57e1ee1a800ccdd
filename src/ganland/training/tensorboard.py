"""TensorBoard event files of a run (`train.tensorboard: true`, or `ganland tensorboard RUN` after the
fact): every statistic of stats.jsonl and every score of metrics.jsonl as scalars, the sample
pictures as images, the resolved config and the guard's actions as text.

RUN/tensorboard/ holds the events; view them with `tensorboard --logdir RUN/tensorboard`. A
resumed run opens its writer with `purge_step` = the checkpoint's step + 1, so TensorBoard drops
what the interrupted process wrote after that step (as stats.jsonl and metrics.jsonl are trimmed).
Needs the optional package: `pip install 'ganland[tensorboard]'`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError

FOLDER = "tensorboard"  # inside the run folder
# stats.jsonl keys that are not statistics
BOOKKEEPING = {"kind", "step", "epoch", "images", "seconds", "partial", "detected_at"}


def summary_writer(logdir: Path, purge_step: Optional[int] = None):
    """torch's SummaryWriter, or a ConfigError that says how to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("TensorBoard is not installed: pip install 'ganland[tensorboard]' (or pip install "
                          "tensorboard), or set train.tensorboard=false") from None
    return SummaryWriter(str(logdir), purge_step=purge_step)


class TensorBoard:
    """Writes a run's records, scores and pictures as TensorBoard events, as they come."""

    def __init__(self, run_dir: Path, step: int, config_yaml: str):
        # Resumed at `step`: what was written at that step stays (the checkpoint came after it), later
        # steps go; back at step 0 (the first checkpoint), everything earlier writers wrote goes.
        folder = Path(run_dir) / FOLDER
        earlier = folder.is_dir() and any(folder.iterdir())
        self.writer = summary_writer(folder, purge_step=step + 1 if step else (0 if earlier else None))
        if step == 0:
            self.writer.add_text("config", "```yaml\n" + config_yaml + "\n```", 0)

    @classmethod
    def attach(cls, trainer) -> "TensorBoard":
        """A writer from the trainer's step on, given every record, score and picture it makes."""
        tb = cls(trainer.run_dir, trainer.step, trainer.cfg.to_yaml())
        trainer.log.listeners[:] = [tb.record]
        trainer.pictures.listeners[:] = [tb.image]
        if trainer.evaluation is not None:
            trainer.evaluation.listeners[:] = [tb.score]
        return tb

    def record(self, rec: dict) -> None:
        """One stats.jsonl record: its numbers as scalars under its kind ("train/loss_D", ...)."""
        kind, step = rec.get("kind", "train"), int(rec.get("step", 0))
        if kind == "guard":
            self.writer.add_text("guard", f"{rec.get('problem', '')}: {rec.get('action', '')}", step)
            return
        if kind == "setup":
            self.writer.add_text("setup", json.dumps(rec, indent=1), step)
            return
        if kind == "train" and rec.get("partial"):
            return  # a window the resumed run logs in full
        for k, v in rec.items():
            if k not in BOOKKEEPING and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"{kind}/{k}", v, step)

    def score(self, score) -> None:
        """One evaluation (an `evaluation.Score` with a step): its numbers under "eval/"."""
        for k, v in score.metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"eval/{k}", v, score.step or 0)

    def image(self, path: Path, step: int) -> None:
        """A picture file (the fixed-noise samples of a step)."""
        from PIL import Image

        with Image.open(path) as img:
            self.writer.add_image("samples", np.asarray(img.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


def rebuild(run_dir: Path) -> Path:
    """Events for a run trained without TensorBoard, from its stats.jsonl, metrics.jsonl and
    samples/step_*.png; returns the events folder. Refuses to mix with existing events."""
    from ..evaluation import read_scores
    from .checkpoint import checkpoint_step
    from .stats import RunLog

    run_dir = Path(run_dir)
    log = RunLog(run_dir, lambda: {}, warn_non_finite=False)
    if not (run_dir / "config.yaml").is_file() or not log.path.is_file():
        raise ConfigError(f"{run_dir} is not a ganland run folder (no config.yaml and stats.jsonl)")
    folder = run_dir / FOLDER
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"{folder} already holds events (the run wrote them, or they were rebuilt before); "
                          f"view them with `tensorboard --logdir {folder}`, or delete the folder to rebuild it")
    tb = TensorBoard(run_dir, 0, (run_dir / "config.yaml").read_text())
    for rec in log.rows():
        tb.record(rec)
    if (run_dir / "metrics.jsonl").is_file():
        for score in read_scores(run_dir):
            if score.step is not None:
                tb.score(score)
    for png in sorted((run_dir / "samples").glob("step_*.png")):
        tb.image(png, checkpoint_step(png.with_suffix(".pt")) or 0)
    tb.close()
    return folder
