"""Statistics and progress: running means of the step outputs, the records of stats.jsonl, the
console (progress bar and the lines above it), and trimming the JSON-lines files on resume.

stats.jsonl holds one record per line:
  {"kind": "train", "step", "epoch", "images", "seconds", <means over the logging window>}
  {"kind": "epoch", "epoch", "step", "images", "seconds", "epoch_loss_D", ..., <held-out report>}
  {"kind": "guard", "step", "epoch", "problem", "action", ...}   (divergence guard, guard.py)
A train record with "partial": true closes a run that ended inside a logging window.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from .checkpoint import atomic_write

SHOWN = ("loss_D", "loss_G", "D_real", "D_fake")  # the step outputs shown beside the progress bar


class Means:
    """Running sums of detached scalar tensors; read (one host sync) only when asked."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def read(self) -> dict[str, float]:
        """The means since the last read (and start over)."""
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


class Progress:
    """Progress on the console. On a terminal: a tqdm bar over steps, or over seconds when the run
    is limited by time only. Otherwise (a log file, a pipe, a notebook's captured stream): no bar
    redraws, but a plain line now and then (`line`). Off: nothing but the lines written above it."""

    PLAIN_EVERY = 30.0  # seconds between plain progress lines when stderr is not a terminal

    def __init__(self, enabled: bool, steps_total: Optional[int], seconds_total: Optional[float], start_step: int,
                 start_seconds: float, terminal: Optional[bool] = None):
        self.bar = None
        self.by_time = steps_total is None and seconds_total is not None
        self.steps_total, self.seconds_total = steps_total, seconds_total
        terminal = _is_terminal(sys.stderr) if terminal is None else terminal
        self.plain = enabled and not terminal  # lines instead of a bar
        self.last_line = time.monotonic()
        if not enabled or self.plain:
            return
        from tqdm.auto import tqdm

        if self.by_time:
            self.bar = tqdm(total=round(seconds_total), initial=round(start_seconds), unit="s", dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}s [{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=steps_total, initial=start_step, unit="step", dynamic_ncols=True)

    def update(self, seconds: float) -> None:
        """One step done, `seconds` of training in all."""
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

    def line(self, where: dict, values: dict) -> None:
        """Without a bar: a plain progress line, at most every PLAIN_EVERY seconds."""
        if not self.plain or time.monotonic() - self.last_line < self.PLAIN_EVERY:
            return
        self.last_line = time.monotonic()
        done = (f"/{self.steps_total}" if self.steps_total else "") + ", " + _minutes(where["seconds"]) + \
            (f" of {_minutes(self.seconds_total)}" if self.seconds_total else "")
        shown = "  ".join(f"{k} {values[k]:.3g}" for k in SHOWN if k in values)
        self.write(f"step {where['step']}{done}" + (f"  {shown}" if shown else ""), err=True)

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
            self.bar = None


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class RunLog:
    """A run's statistics: the logging window and epoch means, stats.jsonl, and the console.

    `where()` gives the counters every record starts with: {"step", "epoch", "images", "seconds"}.
    """

    def __init__(self, run_dir: Path, where: Callable[[], dict], warn_non_finite: bool, world=None):
        from .distributed import World

        self.run_dir = Path(run_dir)
        self.where = where
        self.world = world or World.single()  # several processes: the means are theirs together, rank 0 writes
        self.window, self.epoch_means = Means(), Means()
        self.last: dict = {}  # the newest train record
        self.progress = Progress(False, None, None, 0, 0.0)  # replaced by `start`
        self._warn = warn_non_finite  # say once when the losses turn NaN/inf (when no guard watches them)
        self.listeners: list[Callable[[dict], None]] = []  # also given every record (e.g. TensorBoard)

    @property
    def path(self) -> Path:
        return self.run_dir / "stats.jsonl"

    def start(self, enabled: bool, steps_total: Optional[int], seconds_total: Optional[float]) -> None:
        """Open the progress bar at the current counters (rank 0's only)."""
        w = self.where()
        self.progress = Progress(enabled and self.world.main, steps_total, seconds_total, w["step"], w["seconds"])

    def close(self) -> None:
        self.progress.close()

    def add(self, out: dict[str, torch.Tensor], epoch_keys: tuple[str, ...]) -> None:
        """One step's outputs: all into the logging window, `epoch_keys` also into the epoch means."""
        self.window.add(out)
        self.epoch_means.add({k: out[k] for k in epoch_keys})

    def log(self, partial: bool = False) -> dict:
        """Write the logging window's means as a train record (`partial`: the run ended inside it)."""
        self.window.sums = self.world.mean_of(self.window.sums)  # every process's steps (one all-reduce)
        values = self.window.read()
        if self._warn and not all(map(math.isfinite, values.values())):
            self._warn = False
            self.say(f"ganland: warning: non-finite losses or gradients by step {self.where()['step']} and "
                     "train.guard is off: the run is training on NaN/inf", err=True)
        w = self.where()
        record = {"kind": "train", "step": w["step"], "epoch": round(w["epoch"], 4), "images": w["images"],
                  "seconds": round(w["seconds"], 2), **values}
        if partial:
            record["partial"] = True
        self.write(record)
        self.last = record
        self.progress.postfix({k: values[k] for k in SHOWN if k in values})
        self.progress.line(w, values)
        return record

    def end_epoch(self, epoch: int, report: dict, say: bool = True) -> None:
        """The epoch record (epoch means of the losses, the held-out report) and, with `say`, its
        console line (not for toy samplers, whose "epochs" are only a count of fresh draws)."""
        self.epoch_means.sums = self.world.mean_of(self.epoch_means.sums)
        means = self.epoch_means.read()
        w = self.where()
        record = {"kind": "epoch", "epoch": epoch, "step": w["step"], "images": w["images"],
                  "seconds": round(w["seconds"], 2), **{f"epoch_{k}": v for k, v in means.items()}, **report}
        self.write(record)
        parts = [f"epoch {epoch}", f"step {w['step']}"]
        parts += [f"{k} {means[k]:.4f}" for k in sorted(means)]
        parts += [f"{k} {v:.4f}" for k, v in report.items()]
        if say:
            self.say("  ".join(parts))

    def write(self, record: dict) -> None:
        if not self.world.main:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for listener in self.listeners:
            listener(record)

    def say(self, text: str, err: bool = False) -> None:
        if not self.world.main:
            return
        self.progress.write(text, err)

    def rows(self) -> list[dict]:
        """The records so far (lines cut short by a kill left out)."""
        if not self.path.is_file():
            return []
        return [rec for line in self.path.read_text().splitlines() if (rec := _json_or_none(line)) is not None]

    def trim(self, step: int, epoch: int) -> None:
        """On resume or rollback to (step, epoch): drop the stats and in-training scores written after it."""
        if not self.world.main:
            return

        def keep_stat(rec: dict) -> bool:
            at = rec.get("step", 0)
            if rec.get("partial"):  # the resumed run logs this window in full
                return False
            return at < step or (at == step and (rec.get("kind") == "train" or rec.get("epoch", 0) <= epoch))

        def keep_score(rec: dict) -> bool:
            return not (rec.get("source", "").startswith("in-training") and (rec.get("step") or 0) > step)

        filter_jsonl(self.path, keep_stat)
        filter_jsonl(self.run_dir / "metrics.jsonl", keep_score)

    def state_dict(self) -> dict:
        return {"window": self.window.state_dict(), "epoch_means": self.epoch_means.state_dict()}

    def load_state_dict(self, s: dict, device) -> None:
        self.window.load_state_dict(s["window"], device)
        self.epoch_means.load_state_dict(s["epoch_means"], device)


def filter_jsonl(path: Path, keep: Callable[[dict], bool]) -> None:
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


class Clock:
    """Training wall-clock: the seconds of earlier processes (from the checkpoint) plus the
    window timed by this one, and the time per step after this process's first step (warm-up
    excluded) for estimates."""

    def __init__(self):
        self.before = 0.0  # seconds trained before the current window
        self.opened: Optional[float] = None  # time.monotonic() when the current window opened; None = stopped
        self.first: Optional[tuple[float, int]] = None  # (elapsed, step) after this process's first step

    def reset(self, seconds: float) -> None:
        """The run's time so far is `seconds` (a checkpoint's); a running window starts again now,
        and the step rate is measured afresh."""
        self.before, self.first = seconds, None
        if self.opened is not None:
            self.opened = time.monotonic()

    def start(self) -> None:
        self.opened = time.monotonic()

    def stop(self) -> float:
        self.before, self.opened = self.total(), None
        return self.before

    def elapsed(self) -> float:
        """Seconds in the current window."""
        return time.monotonic() - self.opened if self.opened is not None else 0.0

    def total(self) -> float:
        return self.before + self.elapsed()

    def stepped(self, step: int) -> None:
        """A step ended (only the first of this process is remembered)."""
        if self.first is None:
            self.first = (self.elapsed(), step)

    def per_step(self, step: int) -> float:
        """Seconds per step in this process, after its first step when there are more."""
        first_seconds, first_step = self.first or (0.0, 0)
        if step > first_step:
            return (self.elapsed() - first_seconds) / (step - first_step)
        return self.elapsed() / max(1, step)
