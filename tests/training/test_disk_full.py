"""A full disk or a read-only folder (docs/robustness.md): a checkpoint write that cannot complete
leaves the previous checkpoints byte-identical and no temporary file, and reports the cause and
the path as a CheckpointError; a training run that hits it stops with that one clear error."""
from __future__ import annotations

import builtins
import errno
import os
import re
from pathlib import Path

import pytest
import torch

from ganland.cli import main
from ganland.errors import CheckpointError
from ganland.training import checkpoint
from ganland.training import stats as stats_module
from ganland.training.checkpoint import atomic_write, checkpoint_path, list_checkpoints, save_checkpoint, verify_file
from ganland.training.runs import resume


def failure(code: int, filename=None) -> OSError:
    return OSError(code, os.strerror(code), *([str(filename)] if filename else []))


class FailingModule:
    """Stands in for the `os` module inside ganland.training.checkpoint: calls of
    `name` for which `when(*args)` holds raise OSError(`code`); everything else is the real thing."""

    def __init__(self, real, name: str, code: int, when=lambda *args: True):
        self.real, self.name, self.code, self.when = real, name, code, when
        self.failures = 0

    def __getattr__(self, attr):
        real = getattr(self.real, attr)
        if attr != self.name:
            return real

        def call(*args, **kwargs):
            if self.when(*args):
                self.failures += 1
                raise failure(self.code)
            return real(*args, **kwargs)

        return call


def second_call():
    """A `when` that lets the first call through and fails the rest (the disk fills mid-file)."""
    calls = []

    def when(*args):
        calls.append(args)
        return len(calls) > 1

    return when


def state(step: int) -> dict:
    return {"config_yaml": "{}", "data_info": {}, "counters": {"step": step},
            "G": {"w": torch.full((64,), float(step))}}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def run(tmp_path) -> Path:
    run = tmp_path / "run"
    for step in (1, 2):
        save_checkpoint(run, step, state(step), keep=2)
    return run


CASES = {  # what fails -> (the `os` call, errno, its text)
    "disk-full-mid-write": ("write", errno.ENOSPC, "No space left on device [ENOSPC]"),
    "fsync-io-error": ("fsync", errno.EIO, "Input/output error [EIO]"),
    "rename-read-only": ("replace", errno.EROFS, "Read-only file system [EROFS]"),
    "folder-not-writable": ("open", errno.EACCES, "Permission denied [EACCES]"),
    "quota": ("write", errno.EDQUOT, "Disk quota exceeded [EDQUOT]"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_save_keeps_every_previous_checkpoint_intact(run, monkeypatch, case):
    call, code, text = CASES[case]
    before = snapshot(run / "checkpoints")
    fake = FailingModule(os, call, code, second_call() if call == "write" else (lambda *a: True))
    monkeypatch.setattr(checkpoint, "os", fake)
    path = checkpoint_path(run, 3)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(run, 3, state(3), keep=1)  # keep=1: an older one would be deleted after success
    assert fake.failures == 1
    assert str(info.value) == (f"could not write {path}: {text}; nothing was replaced: the previous checkpoint "
                               "(if any) is intact")
    assert snapshot(run / "checkpoints") == before  # byte-identical, none deleted, no temporary file, no step 3
    assert not path.exists()


def test_a_signal_just_after_the_temporary_file_opens_leaves_no_file(tmp_path, monkeypatch):
    """A second Ctrl-C can land anywhere, even between the open of the temporary file and the
    next line: the write is abandoned and nothing is left behind (CI once found a .tmp there)."""
    class InterruptedAfterOpen:
        def __getattr__(self, attr):
            if attr != "open":
                return getattr(os, attr)

            def opened_then_interrupted(*args, **kwargs):
                os.close(os.open(*args, **kwargs))
                raise KeyboardInterrupt

            return opened_then_interrupted

    path = tmp_path / "step_000000001.pt"
    monkeypatch.setattr(checkpoint, "os", InterruptedAfterOpen())
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"contents")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"old contents\n")
    monkeypatch.setattr(checkpoint, "os", FailingModule(os, "write", errno.ENOSPC, second_call()))
    with pytest.raises(CheckpointError, match=rf"could not write {re.escape(str(path))}: No space left on device"):
        atomic_write(path, b"new contents, long enough to be written in two halves\n" * 100)
    assert path.read_bytes() == b"old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_a_write_that_reads_back_wrong_is_caught_and_older_checkpoints_kept(run, monkeypatch):
    """The file system accepts the write but stores something else: the read-back check fails."""
    def flip(fd, data):
        data = bytearray(data)
        data[-1] ^= 0x01
        return os.write(fd, bytes(data))

    class Corrupting:
        def __getattr__(self, attr):
            return flip if attr == "write" else getattr(os, attr)

    monkeypatch.setattr(checkpoint, "os", Corrupting())
    with pytest.raises(CheckpointError, match=r"step_000000003\.pt is corrupt: SHA-256 .*; it was just written, so the "
                                              r"disk or file system is failing\. Older checkpoints were kept"):
        save_checkpoint(run, 3, state(3), keep=1)
    monkeypatch.undo()
    assert [p.name for p in list_checkpoints(run)] == ["step_000000003.pt", "step_000000002.pt", "step_000000001.pt"]
    verify_file(checkpoint_path(run, 2))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_checkpoints_folder(run):
    folder = run / "checkpoints"
    before = snapshot(folder)
    folder.chmod(0o555)
    try:
        with pytest.raises(CheckpointError,
                           match=r"could not write .*step_000000003\.pt: Permission denied \[EACCES\]"):
            save_checkpoint(run, 3, state(3), keep=1)
    finally:
        folder.chmod(0o755)
    assert snapshot(folder) == before


# --- a training run that hits it ------------------------------------------------------------------
def train_args(data: Path, run: Path) -> list[str]:
    return ["train", "fashion-dcgan", "--set", f"data.root={data}", "--set", "data.name=mnist", "--set",
            "model.z_dim=8", "--set", "model.options={g_width: 4, d_width: 4}", "--set", "train.batch_size=16",
            "--set", "train.log_every=2", "--set", "train.checkpoint_every=2", "--set", "train.sample_every=0",
            "--set", "train.heldout_batches=1", "--steps", "8", "--out", str(run), "--no-progress"]


def open_file(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell which file a write goes to")
@pytest.mark.e2e
def test_training_that_fills_the_disk_stops_with_one_clear_error(fake_mnist, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    seen: dict[str, bytes] = {}

    def disk_full_from_step_4(fd, data):  # checkpoints of steps 0 and 2 fit, the one of step 4 does not
        m = re.search(r"/\.step_(\d{9})\.pt\.", open_file(fd))
        if m and int(m.group(1)) >= 4:
            if not seen:  # what the previous checkpoints held when the disk filled up
                seen.update({p.name: p.read_bytes() for p in list_checkpoints(run)})
            return True
        return False

    monkeypatch.setattr(checkpoint, "os", FailingModule(os, "write", errno.ENOSPC, disk_full_from_step_4))
    assert main(train_args(fake_mnist, run)) == 2
    err = capsys.readouterr().err
    assert err == (f"ganland: error: could not write {run}/checkpoints/step_000000004.pt: No space left on device "
                   "[ENOSPC]; nothing was replaced: the previous checkpoint (if any) is intact\n")
    assert sorted(seen) == ["step_000000000.pt", "step_000000002.pt"]
    assert snapshot(run / "checkpoints") == seen  # intact, and no temporary file left behind

    monkeypatch.undo()  # space freed: the run continues from step 2 and completes
    assert resume(run).step == 8
    assert [p.name for p in list_checkpoints(run)] == ["step_000000008.pt", "step_000000006.pt"]


@pytest.mark.e2e
def test_training_that_cannot_write_its_statistics_stops_with_one_clear_error(fake_mnist, tmp_path, monkeypatch,
                                                                              capsys):
    run = tmp_path / "run"
    stats = run / "stats.jsonl"

    def full_disk_open(file, mode="r", *args, **kwargs):
        newest = list_checkpoints(run)[:1]
        if Path(file) == stats and "a" in mode and newest and newest[0].name == "step_000000004.pt":
            raise failure(errno.ENOSPC, file)
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(stats_module, "open", full_disk_open, raising=False)
    assert main(train_args(fake_mnist, run)) == 2
    err = capsys.readouterr().err
    assert err == (f"ganland: error: training stopped at step 6: No space left on device [ENOSPC] ({stats}); the "
                   f"newest checkpoint {run}/checkpoints/step_000000004.pt is intact: fix the cause and continue with "
                   f"`ganland train --resume {run} --steps 8`\n")
    verify_file(run / "checkpoints" / "step_000000004.pt")
