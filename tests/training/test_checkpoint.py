"""Format-2 checkpoints (docs/robustness.md): header with SHA-256 and size, verified before
anything is unpickled; damaged files give a CheckpointError naming the file and the problem;
resume falls back to the previous good checkpoint and moves the bad one aside; format 1 still
loads with a warning; newer formats and checkpoints that do not fit are refused."""
from __future__ import annotations

import os
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import ganland
from ganland.cli import main
from ganland.config import load_config
from ganland.errors import CheckpointError
from ganland.training import checkpoint
from ganland.training.checkpoint import (FORMAT, atomic_save, atomic_write, encode, latest_checkpoint, list_checkpoints,
                                         load_checkpoint, verify_file)
from ganland.training.runs import resume, train

from conftest import write_fake_mnist  # tests/conftest.py (tests/ is on sys.path)

TINY = {"data.name": "mnist", "model.name": "dcgan", "model.z_dim": 8, "model.options": {"g_width": 4, "d_width": 4},
        "train.batch_size": 16, "train.log_every": 2, "train.sample_every": 0, "train.checkpoint_every": 2,
        "train.progress": False, "train.heldout_batches": 1, "train.steps": 6}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny run of 6 steps, checkpoints at steps 4 and 6 kept (trained once per module)."""
    folder = tmp_path_factory.mktemp("trained")
    data = write_fake_mnist(folder / "mnist", n_train=64, n_test=32)
    return train(load_config(None, {**TINY, "data.root": str(data)}), str(folder / "run")).run_dir


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A fresh copy of the trained run folder for a test to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def ckpt(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:09d}.pt"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def split(path: Path) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    end = data.index(b"\n")
    return data[:end + 1], data[end + 1:]


# --- the format ---------------------------------------------------------------------------------
def test_format_2_header_names_size_and_sha256_of_the_payload(run):
    header, payload = split(ckpt(run, 6))
    m = re.fullmatch(rb"ganland-checkpoint 2 sha256=([0-9a-f]{64}) size=(\d+)\n", header)
    assert m and int(m.group(2)) == len(payload) and m.group(1).decode() == hashlib.sha256(payload).hexdigest()
    assert payload[:4] == b"PK\x03\x04"  # torch.save's zip container
    verify_file(ckpt(run, 6))
    ck = load_checkpoint(ckpt(run, 6))
    assert ck["format"] == FORMAT and ck["format_version"] == 2 and ck["counters"]["step"] == 6
    assert [p.name for p in list_checkpoints(run)] == ["step_000000006.pt", "step_000000004.pt"]


# --- damaged files ------------------------------------------------------------------------------
def truncate_payload(data: bytes) -> bytes:
    return data[: len(data) - 1000]


def flip_payload_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01  # one bit in the middle of the payload
    return bytes(out)


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x80])


def damage_digest(data: bytes) -> bytes:
    i = data.index(b"sha256=") + len(b"sha256=")
    return data[:i] + (b"0" if data[i:i + 1] != b"0" else b"1") + data[i + 1:]


DAMAGE = {
    "truncated": (truncate_payload, r"is truncated: its header says \d+ bytes of data, the file holds \d+"),
    "flipped-bit": (flip_payload_byte, r"is corrupt: SHA-256 of its data is [0-9a-f]{16}\.\.\., its header says "),
    "flipped-last-byte": (flip_last_byte, r"is corrupt: SHA-256"),
    "wrong-digest": (damage_digest, r"is corrupt: SHA-256"),
    "trailing-bytes": (lambda d: d + b"\0" * 7,
                       r"has trailing bytes: its header says \d+ bytes of data, the file holds"),
    "cut-in-header": (lambda d: d[:40], r"is corrupt: its header line is damaged"),
    "empty": (lambda d: b"", r"is empty \(0 bytes\)"),
    "not-a-checkpoint": (lambda d: b"hello, world\n" * 3, r"is not a ganland checkpoint \(it starts with b'hello"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_checkpoints_give_a_clear_error_naming_the_file(run, damage):
    fn, message = DAMAGE[damage]
    path = ckpt(run, 6)
    path.write_bytes(fn(path.read_bytes()))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointError, match=message):
        ganland.load(path)  # one file: no fallback


@pytest.mark.parametrize("damage", ["truncated", "flipped-bit", "empty"])
@pytest.mark.e2e
def test_resume_falls_back_to_the_previous_good_checkpoint_and_moves_the_bad_one_aside(run, damage, capsys):
    bad = ckpt(run, 6)
    damaged = DAMAGE[damage][0](bad.read_bytes())
    bad.write_bytes(damaged)

    assert main(["train", "--resume", str(run), "--steps", "8", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert re.search(rf"ganland: warning: checkpoint {re.escape(str(bad))} {DAMAGE[damage][1]}", err), err
    assert (f"ganland: warning: falling back to the previous good checkpoint {ckpt(run, 4)} "
            "(skipped 1 newer unusable one)") in err
    aside = bad.with_name("step_000000006.pt.unusable")
    assert f"ganland: warning: moved the unusable checkpoint aside to {aside}" in err
    assert aside.read_bytes() == damaged  # kept for inspection, unchanged
    # Trained on from step 4: steps 5..8 again, a new good step 6 and step 8.
    assert [p.name for p in list_checkpoints(run)] == ["step_000000008.pt", "step_000000006.pt"]
    assert load_checkpoint(ckpt(run, 8))["counters"]["step"] == 8
    steps = [r["step"] for r in map(json.loads, (run / "stats.jsonl").read_text().splitlines())
             if r["kind"] == "train"]
    assert steps == [2, 4, 6, 8]


def test_load_of_a_run_falls_back_without_changing_the_folder(run, capsys):
    ckpt(run, 6).write_bytes(flip_payload_byte(ckpt(run, 6).read_bytes()))
    before = snapshot(run)
    model = ganland.load(run)
    assert model.step == 4
    assert "falling back to the previous good checkpoint" in capsys.readouterr().err
    assert snapshot(run) == before  # loading never moves or writes anything


def test_no_usable_checkpoint_lists_every_problem_and_writes_nothing(run):
    for step, damage in ((6, "truncated"), (4, "flipped-bit")):
        ckpt(run, step).write_bytes(DAMAGE[damage][0](ckpt(run, step).read_bytes()))
    before = snapshot(run)
    with pytest.raises(CheckpointError) as info:
        resume(run, {"train.steps": 8})
    message = str(info.value)
    assert message.startswith(f"no usable checkpoint in {run / 'checkpoints'}:")
    assert f"{ckpt(run, 6)} is truncated" in message and f"{ckpt(run, 4)} is corrupt" in message
    assert snapshot(run) == before
    shutil.rmtree(run / "checkpoints")
    with pytest.raises(CheckpointError, match="no checkpoints in .*trained long enough to save one"):
        ganland.load(run)


# --- format 1 and newer formats -----------------------------------------------------------------
def write_format_1(path: Path, ck: dict) -> None:
    """A checkpoint as ganland wrote it before checksums: a bare torch.save zip."""
    state = {k: v for k, v in ck.items() if k not in ("path", "skipped")}
    state["format_version"] = 1
    torch.save(state, path)


@pytest.mark.e2e
def test_format_1_still_loads_with_a_warning(run):
    path = ckpt(run, 6)
    reference = ganland.load(path).sample(4, seed=1)["images"]
    write_format_1(path, load_checkpoint(path))
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    with pytest.warns(UserWarning, match=r"written by an older ganland \(format 1\) without a checksum; it was "
                                         r"loaded safely but its integrity could not be verified"):
        ck = load_checkpoint(path)
    assert ck["format_version"] == 1 and ck["counters"]["step"] == 6
    with pytest.warns(UserWarning, match="format 1"):
        model = ganland.load(run)
    assert (model.sample(4, seed=1)["images"] == reference).all()
    with pytest.raises(CheckpointError, match="has no checksum"):
        verify_file(path)
    with pytest.warns(UserWarning, match="format 1"):
        assert resume(run, {"train.steps": 8}).step == 8  # training continues from it
    torch.save({"format": FORMAT, "format_version": 1, "config_yaml": "", "data_info": {}, "counters": {}}, path)
    with pytest.raises(CheckpointError, match=r"is incomplete: it lacks G"):  # a format-1 file without weights
        load_checkpoint(path)


def with_header(payload: bytes, version: int = 2) -> bytes:
    return (f"ganland-checkpoint {version} sha256={hashlib.sha256(payload).hexdigest()} size={len(payload)}\n"
            .encode() + payload)


@pytest.mark.parametrize("how", ["header", "damaged-header", "inside"])
def test_a_newer_format_is_refused_with_an_upgrade_message(run, how):
    path = ckpt(run, 6)
    header, payload = split(path)
    if how == "header":
        path.write_bytes(with_header(payload, version=3))
    elif how == "damaged-header":  # a future header this version cannot even parse
        path.write_bytes(b"ganland-checkpoint 3 zstd sha512=abc\n" + payload)
    else:  # a valid format-2 file whose contents say format 3
        ck = load_checkpoint(path)
        atomic_save({**{k: v for k, v in ck.items() if k not in ("path", "skipped")}, "format_version": 3}, path)
    message = (rf"checkpoint {re.escape(str(path))} was written by a newer ganland \(format 3; this one reads formats "
               r"1 to 2\): upgrade ganland to read it")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    # Not a damaged file to skip: resume and load stop rather than fall back and set a newer run back.
    before = snapshot(run)
    with pytest.raises(CheckpointError, match=message):
        resume(run, {"train.steps": 8})
    with pytest.raises(CheckpointError, match=message):
        ganland.load(run)
    assert snapshot(run) == before


# --- checkpoints that do not fit --------------------------------------------------------------------
def rewrite(path: Path, **changes) -> None:
    ck = {k: v for k, v in load_checkpoint(path).items() if k not in ("path", "skipped")}
    ck.update(changes)
    atomic_save(ck, path)


def test_weights_that_do_not_fit_their_model_are_refused(run):
    path = ckpt(run, 6)
    config = yaml.safe_load(load_checkpoint(path)["config_yaml"])
    config["model"]["options"]["g_width"] = 8  # as if another version or model wrote these weights
    rewrite(path, config_yaml=yaml.safe_dump(config))
    before = snapshot(run)
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: weights do not fit the model its config "
                                              r"describes \(different model or ganland version\?\): .*size mismatch"):
        ganland.load(path)
    with pytest.raises(CheckpointError, match=rf"checkpoint {re.escape(str(path))} does not fit this run \(different "
                                              r"model or ganland version\?\): RuntimeError: .*size mismatch"):
        resume(run, {"train.steps": 8})
    assert snapshot(run) == before  # nothing written over


def test_missing_or_wrong_contents_are_refused(run):
    path = ckpt(run, 6)
    ck = load_checkpoint(path)
    rewrite(path, opt_D="not a state dict")
    with pytest.raises(CheckpointError, match=rf"checkpoint {re.escape(str(path))} does not fit this run"):
        resume(run, {"train.steps": 8})
    rewrite(path, data_info={"shape": "big"}, opt_D=ck["opt_D"])
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: damaged checkpoint contents"):
        ganland.load(path)
    state = {k: v for k, v in ck.items() if k not in ("path", "skipped", "G")}
    path.write_bytes(encode(state))
    with pytest.raises(CheckpointError, match=rf"checkpoint {re.escape(str(path))} is incomplete: it lacks G"):
        load_checkpoint(path)
    path.write_bytes(encode({"hello": "world"}))
    with pytest.raises(CheckpointError, match=r"is not a ganland checkpoint \(no 'ganland-checkpoint' marker"):
        load_checkpoint(path)
    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)
    path.write_bytes(with_header(buf.getvalue()))
    with pytest.raises(CheckpointError, match="is not a ganland checkpoint"):
        load_checkpoint(path)


@pytest.mark.e2e
def test_a_run_moved_to_another_kind_of_device_resumes_with_a_fresh_noise_stream(run, capsys):
    path = ckpt(run, 6)
    rng = load_checkpoint(path)["rng"]
    assert rng["gen_device"] == "cpu"
    # What a CUDA run leaves: a Philox state (16 bytes), which a CPU generator cannot take.
    rewrite(path, rng={**rng, "gen": torch.zeros(16, dtype=torch.uint8), "gen_device": "cuda"})
    assert resume(run, {"train.steps": 8}).step == 8
    assert "saved on another kind of device (cuda) than this one (cpu)" in capsys.readouterr().err
    # The same wrong state claimed for this device is damage, not a move: refused.
    path = ckpt(run, 8)
    rewrite(path, rng={**load_checkpoint(path)["rng"], "gen": torch.zeros(16, dtype=torch.uint8)})
    with pytest.raises(CheckpointError, match="does not fit this run"):
        resume(run, {"train.steps": 10})


@pytest.mark.e2e
def test_temporary_files_of_an_interrupted_write_are_removed_on_resume(run):
    stale = run / "checkpoints" / ".step_000000008.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert latest_checkpoint(run)["counters"]["step"] == 6  # never mistaken for a checkpoint
    resume(run, {"train.steps": 7})
    assert not stale.exists()
    assert checkpoint.remove_temporary_files(run) == []


def test_atomic_writes_make_files_as_readable_as_any_other(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.yaml", b"x: 1\n")
        assert (tmp_path / "a.yaml").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
        os.umask(0o077)
        atomic_write(tmp_path / "b.yaml", b"x: 1\n")
        assert (tmp_path / "b.yaml").stat().st_mode & 0o777 == 0o600  # the user's umask decides
    finally:
        os.umask(old)
