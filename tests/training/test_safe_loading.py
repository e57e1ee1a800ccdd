"""Safe loading (docs/robustness.md): a checkpoint carrying a malicious pickle is refused by
load_checkpoint, ganland.load and resume with a CheckpointError, and its payload never runs,
whether the file is a bare torch.save zip or wrapped in a valid format-2 header."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import torch

import ganland
from ganland.errors import CheckpointError
from ganland.training.checkpoint import FORMAT, encode, load_checkpoint
from ganland.training.runs import resume, train


class Payload:
    """Unpickling this runs `os.system(command)`."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def malicious_state(marker: Path) -> dict:
    """A checkpoint dict with every required key; the only thing wrong is one object in it."""
    return {"format": FORMAT, "format_version": 2, "config_yaml": "{}", "data_info": {}, "counters": {"step": 9},
            "G": {"net.0.weight": torch.zeros(2), "evil": Payload(f"touch {marker}")}}


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def test_the_payload_is_real(tmp_path, marker):
    """Control: the same file loaded the unsafe way does run the command (so the tests below
    would notice if ganland ever loaded that way)."""
    path = tmp_path / "evil.pt"
    torch.save(malicious_state(marker), path)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare-zip", "format-2-header"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, marker, wrapped):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    path = run / "checkpoints" / "step_000000009.pt"
    if wrapped:  # a valid header with the correct size and SHA-256: the checksum cannot help here
        path.write_bytes(encode(malicious_state(marker)))
        assert path.read_bytes().startswith(b"ganland-checkpoint 2 sha256=")
    else:
        torch.save(malicious_state(marker), path)
        assert path.read_bytes()[:4] == b"PK\x03\x04"
    refused = (rf"checkpoint {re.escape(str(path))} cannot be read safely "
               r"\(UnpicklingError: .*GLOBAL posix\.system.*\); "
               r"it is corrupt or not a ganland checkpoint, and nothing in it was executed")
    assert os.name == "posix"  # os.system pickles as posix.system

    with pytest.raises(CheckpointError, match=refused) as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value)  # no advice, even cut short, to load it the unsafe way
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        ganland.load(path)
    with pytest.raises(CheckpointError, match="(?s)no usable checkpoint .*cannot be read safely"):
        ganland.load(run)
    with pytest.raises(CheckpointError, match="(?s)no usable checkpoint .*cannot be read safely"):
        resume(run)
    with pytest.raises(CheckpointError, match="(?s)no usable checkpoint .*cannot be read safely"):
        ganland.sample(run, n=2)
    assert not marker.exists()
    assert path.exists()  # nothing was moved or deleted: there was no good checkpoint to resume from


@pytest.mark.e2e
def test_malicious_newest_checkpoint_is_skipped_not_run(tmp_path, marker, fake_mnist, capsys):
    """With an older good checkpoint, resume falls back to it and moves the malicious one aside."""
    from .test_loop import tiny

    cfg = tiny(fake_mnist, **{"train.steps": 3, "train.sample_every": 0, "train.heldout_batches": 1})
    run = train(cfg, str(tmp_path / "run")).run_dir
    evil = run / "checkpoints" / "step_000000099.pt"
    evil.write_bytes(encode(malicious_state(marker)))
    assert resume(run, {"train.steps": 4}).step == 4
    assert "cannot be read safely" in capsys.readouterr().err
    assert not marker.exists() and not evil.exists()
    assert (run / "checkpoints" / "step_000000099.pt.unusable").exists()
    shutil.rmtree(run)
