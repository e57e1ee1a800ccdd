"""Checkpoints: atomic writes, newest-first lookup, loading without unpickling code.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts saved with
`torch.save` and read back with `torch.load(weights_only=True)`, which refuses arbitrary
pickled objects. It carries the resolved config (as YAML text), so a checkpoint alone is
enough to rebuild its models.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import torch

from ..errors import CheckpointError

FORMAT = "ganland-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step_(\d{9})\.pt$")


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def checkpoint_path(run: Path, step: int) -> Path:
    return checkpoint_dir(run) / f"step_{step:09d}.pt"


def list_checkpoints(run: Path) -> list[Path]:
    """Checkpoint files of a run folder, newest (highest step) first."""
    folder = checkpoint_dir(run)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: dict, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the complete new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise CheckpointError(f"could not write checkpoint {path}: {e.strerror or e}; "
                                  "the previous checkpoint is left as it was") from e
        raise
    _fsync_dir(path.parent)


def save_checkpoint(run: Path, step: int, state: dict, keep: int) -> Path:
    """Write the checkpoint of `step` and delete all but the newest `keep`."""
    path = checkpoint_path(run, step)
    atomic_save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, path)
    for old in list_checkpoints(run)[keep:]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint file safely (no code is unpickled) and check its format."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # truncated zip, foreign pickle, ...
        raise CheckpointError(f"checkpoint {path} cannot be read safely ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]}); it is corrupt or not a ganland checkpoint") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganland checkpoint")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer ganland (format {ckpt['format_version']}); "
                              "upgrade ganland to read it")
    return ckpt


def latest_checkpoint(run: Path) -> dict:
    """The newest readable checkpoint of a run folder (falls back to older ones, saying so)."""
    paths = list_checkpoints(run)
    if not paths:
        raise CheckpointError(f"no checkpoints in {checkpoint_dir(run)}: is {run} a ganland run folder "
                              "that trained long enough to save one?")
    errors = []
    for p in paths:
        try:
            ckpt = load_checkpoint(p)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if errors:
            print(f"ganland: skipped unreadable checkpoint(s): {'; '.join(errors)}; using {p.name}")
        ckpt["path"] = str(p)
        return ckpt
    raise CheckpointError("no readable checkpoint in " + str(checkpoint_dir(run)) + ": " + "; ".join(errors))
