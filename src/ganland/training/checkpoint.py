"""Checkpoints: atomic, checksummed writes; verified, pickle-free reads; newest-good lookup.

File layout (format 2, docs/robustness.md):

    ganland-checkpoint 2 sha256=<64 hex digits> size=<payload bytes>\\n
    <payload>

The payload is a plain dict of tensors, numbers, strings, lists and dicts written by
`torch.save` and read back with `torch.load(weights_only=True)`, which refuses arbitrary pickled
objects, only after its length and SHA-256 match the header. The dict carries the resolved
config (as YAML text), so a checkpoint alone is enough to rebuild its models. Format-1 files
(a bare `torch.save` zip, written before checksums) still load, with a warning that they could
not be verified.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import secrets
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import torch

from ..errors import CheckpointError

FORMAT = "ganland-checkpoint"
FORMAT_VERSION = 2
_NAME = re.compile(r"^step_(\d{9})\.pt$")
_HEADER = re.compile(rb"^ganland-checkpoint (\d+) sha256=([0-9a-f]{64}) size=(\d+)$")
_HEADER_MAX = 200  # bytes: the header line is shorter than this
_ZIP_MAGIC = b"PK\x03\x04"  # a format-1 file: torch.save's zip container, no header
# Keys every checkpoint payload holds (the trainer's own keys are checked when it loads them).
REQUIRED_KEYS = ("config_yaml", "data_info", "G", "counters")
# Test hook: seconds to pause twice inside each write (half-way through the temporary file, and
# between its fsync and the rename), so a test can SIGKILL the process mid-write. Unset = no pause.
PAUSE_ENV = "GANLAND_TEST_CHECKPOINT_PAUSE"


class NewerFormatError(CheckpointError):
    """A checkpoint written by a newer ganland: not damaged, so never skipped or moved aside."""


def _newer(path: Path, version) -> NewerFormatError:
    return NewerFormatError(f"checkpoint {path} was written by a newer ganland (format {version}; this one reads "
                            f"formats 1 to {FORMAT_VERSION}): upgrade ganland to read it")


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def checkpoint_path(run: Path, step: int) -> Path:
    return checkpoint_dir(run) / f"step_{step:09d}.pt"


def checkpoint_step(path: Path) -> Optional[int]:
    """The step in a checkpoint file name, or None when the name is not step_XXXXXXXXX.pt."""
    m = _NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


def list_checkpoints(run: Path) -> list[Path]:
    """Checkpoint files of a run folder, newest (highest step) first."""
    folder = checkpoint_dir(run)
    if not folder.is_dir():
        return []
    found = [(step, p) for p in folder.iterdir() if (step := checkpoint_step(p)) is not None]
    return [p for _, p in sorted(found, reverse=True)]


# ---- writing ------------------------------------------------------------------------------------

def encode(obj: dict) -> bytes:
    """A checkpoint dict as the bytes of a format-2 file: header line, then the torch.save payload."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    header = f"{FORMAT} {FORMAT_VERSION} sha256={hashlib.sha256(payload).hexdigest()} size={len(payload)}\n"
    return header.encode("ascii") + payload


def _fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in `folder` durable (best effort: not every system can)."""
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


def _write_fd(fd: int, data: memoryview) -> None:
    """Write all of `data` to the file descriptor (os.write may write less than asked)."""
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _pause(enabled: bool) -> None:
    seconds = os.environ.get(PAUSE_ENV) if enabled else None
    if seconds:
        time.sleep(float(seconds))


def atomic_write(path: Path, data: bytes, _test_pause: bool = False, what: str = "file") -> None:
    """Write `data` to a temporary file in the same folder, fsync it, rename it over `path`, and
    fsync the folder. A crash at any moment leaves either the old file or the complete new one.

    Any OSError (disk full, read-only folder, ...) becomes a CheckpointError naming `path` and
    the cause; the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The name is chosen before the file exists, so a signal at any moment (even just after the
        # open) finds `tmp` set and the clean-up below removes the file; 0o666 less the umask, as
        # readable as any other file of the run
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            view = memoryview(data)
            half = len(view) // 2
            _write_fd(fd, view[:half])
            _pause(_test_pause)
            _write_fd(fd, view[half:])
            os.fsync(fd)
        finally:
            os.close(fd)
        _pause(_test_pause)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as e:
        cause = e.strerror or str(e)
        code = f" [{errno.errorcode[e.errno]}]" if e.errno in errno.errorcode else ""
        raise CheckpointError(f"could not write {path}: {cause}{code}; nothing was replaced: the previous "
                              f"{what} (if any) is intact") from e
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_save(obj: dict, path: Path) -> None:
    """`encode(obj)` written atomically to `path` (see `atomic_write`)."""
    atomic_write(path, encode(obj), _test_pause=True, what="checkpoint")


def save_checkpoint(run: Path, step: int, state: dict, keep: int) -> Path:
    """Write the checkpoint of `step`, read it back to check it, then delete all but the newest
    `keep` checkpoints. An older checkpoint is deleted only after the new one is verified."""
    path = checkpoint_path(run, step)
    atomic_save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, path)
    try:
        verify_file(path)
    except CheckpointError as e:
        raise CheckpointError(f"{e}; it was just written, so the disk or file system is failing. "
                              "Older checkpoints were kept") from None
    for old in list_checkpoints(run)[keep:]:
        old.unlink(missing_ok=True)
    return path


class Saver:
    """When a run saves: every `every` generator steps (0 = never on a schedule), and after `minutes`
    without a checkpoint (0 = off); at most one file per step (the end of a run often falls on a
    checkpoint step)."""

    def __init__(self, run: Path, keep: int, every: int, minutes: float):
        self.run, self.keep, self.every, self.minutes = Path(run), keep, every, minutes
        self.saved: Optional[tuple[int, Path]] = None  # (step, file) of the newest checkpoint written here
        self.last = time.monotonic()  # when it was written (or when the run started)

    def late(self) -> bool:
        """Whether the time rule asks for a checkpoint now."""
        return bool(self.minutes and time.monotonic() - self.last >= 60.0 * self.minutes)

    def due(self, step: int, late: Optional[bool] = None) -> bool:
        """Whether step `step` is saved: by the step rule, or by the time rule (`late`: decided
        already, e.g. by every process together; None: asked now)."""
        return bool((self.every and step % self.every == 0) or (self.late() if late is None else late))

    def save(self, step: int, state) -> Path:
        """The checkpoint of `step`, written from `state()` unless this step is saved already."""
        if self.saved is None or self.saved[0] != step:
            self.last = time.monotonic()
            self.saved = (step, save_checkpoint(self.run, step, state(), self.keep))
        return self.saved[1]

    def forget(self) -> None:
        """The state changed without the step moving on (a rollback): the next save writes again."""
        self.saved = None


def remove_temporary_files(run: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that a crash interrupted; returns them."""
    folder = checkpoint_dir(run)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(".step_") and p.name.endswith(".tmp")]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# ---- reading ------------------------------------------------------------------------------------

def _payload(data: bytes, path: Path) -> tuple[bytes, bool]:
    """(the torch.save payload of a checkpoint file's bytes, whether a checksum verified it)."""
    if data.startswith(FORMAT.encode("ascii") + b" "):
        end = data.find(b"\n", 0, _HEADER_MAX)
        m = _HEADER.match(data[:end]) if end > 0 else None
        if m is None:
            version = data[len(FORMAT) + 1:].split(b" ", 1)[0]
            if version.isdigit() and int(version) > FORMAT_VERSION:
                raise _newer(path, int(version))
            raise CheckpointError(f"checkpoint {path} is corrupt: its header line is damaged")
        version, digest, size = int(m.group(1)), m.group(2).decode("ascii"), int(m.group(3))
        if version > FORMAT_VERSION:
            raise _newer(path, version)
        payload = data[end + 1:]
        if len(payload) != size:
            problem = "truncated" if len(payload) < size else "has trailing bytes"
            raise CheckpointError(f"checkpoint {path} is {problem}: its header says {size} bytes of data, "
                                  f"the file holds {len(payload)}")
        actual = hashlib.sha256(payload).hexdigest()
        if actual != digest:
            raise CheckpointError(f"checkpoint {path} is corrupt: SHA-256 of its data is {actual[:16]}..., "
                                  f"its header says {digest[:16]}...")
        return payload, True
    if data.startswith(_ZIP_MAGIC):
        return data, False
    if not data:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    raise CheckpointError(f"{path} is not a ganland checkpoint (it starts with {data[:16]!r})")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read: {e.strerror or e}") from None


def verify_file(path: Path) -> None:
    """Check a format-2 file's length and SHA-256 without unpickling anything."""
    path = Path(path)
    _, verified = _payload(_read_bytes(path), path)
    if not verified:
        raise CheckpointError(f"checkpoint {path} has no checksum")


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint file safely: header and SHA-256 checked first, then the payload loaded
    with weights_only=True (no code is unpickled), then its format and keys checked."""
    path = Path(path)
    payload, verified = _payload(_read_bytes(path), path)
    try:
        ckpt = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, a pickled object that is not plain data, ...
        raise CheckpointError(f"checkpoint {path} cannot be read safely ({type(e).__name__}: "
                              f"{_first_line(e)}); it is corrupt or not a ganland checkpoint, and nothing "
                              "in it was executed") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganland checkpoint (no '{FORMAT}' marker inside)")
    version = ckpt.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise _newer(path, version)
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing or not isinstance(ckpt["config_yaml"], str):
        raise CheckpointError(f"checkpoint {path} is incomplete: it lacks {', '.join(missing) or 'its config'}")
    if not verified:
        warnings.warn(f"checkpoint {path} was written by an older ganland (format 1) without a checksum; "
                      "it was loaded safely but its integrity could not be verified", stacklevel=2)
    return ckpt


# torch's generic preamble and epilogue around the actual reason a weights-only load failed (the
# preamble, cut short, would read as advice to load the file unsafely).
_TORCH_BOILERPLATE = ("Weights only load failed", "Check the documentation of torch.load", "Please file an issue")


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_TORCH_BOILERPLATE)] or lines
    line = next((ln for ln in useful if "WeightsUnpickler error" in ln or "GLOBAL" in ln), useful[0] if useful else "")
    return line[:200]


def latest_checkpoint(run: Path) -> dict:
    """The newest readable checkpoint of a run folder. Unreadable newer ones are skipped, and
    each is reported on stderr with its problem and the checkpoint used instead. A checkpoint of
    a newer format is not skipped: that stops with its NewerFormatError (falling back would set
    back a run that a newer ganland continued). The returned dict has "path" and "skipped" (the
    paths passed over) added."""
    paths = list_checkpoints(run)
    if not paths:
        raise CheckpointError(f"no checkpoints in {checkpoint_dir(run)}: is {run} a ganland run folder "
                              "that trained long enough to save one?")
    errors, skipped = [], []
    for p in paths:
        try:
            ckpt = load_checkpoint(p)
        except NewerFormatError:
            raise
        except CheckpointError as e:
            errors.append(str(e))
            skipped.append(p)
            continue
        for message in errors:
            print(f"ganland: warning: {message}", file=sys.stderr)
        if errors:
            print(f"ganland: warning: falling back to the previous good checkpoint {p} "
                  f"(skipped {len(errors)} newer unusable one{'s' if len(errors) > 1 else ''})", file=sys.stderr)
        ckpt["path"] = str(p)
        ckpt["skipped"] = [str(s) for s in skipped]
        return ckpt
    raise CheckpointError(f"no usable checkpoint in {checkpoint_dir(run)}:\n  " + "\n  ".join(errors))
