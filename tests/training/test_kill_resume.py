"""Exact resume after SIGKILL: a training process killed again and again, also in the middle of
checkpoint writes, ends bitwise identical to an uninterrupted run with the same seed."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ganland
from ganland.training.checkpoint import PAUSE_ENV, list_checkpoints, load_checkpoint

from conftest import write_fake_mnist  # tests/conftest.py (tests/ is on sys.path)

STEPS = 60
# A tiny DCGAN on 64 synthetic digits: 4 batches per epoch, so epoch ends, data-order state,
# EMA, a linear learning-rate schedule, logging, samples and checkpoints all happen often.
SETTINGS = ["--set", "data.name=mnist", "--set", "data.download=false", "--set", "model.z_dim=8",
            "--set", "model.options={g_width: 4, d_width: 4}", "--set", "train.batch_size=16",
            "--set", "train.log_every=3", "--set", "train.sample_every=8", "--set", "train.checkpoint_every=4",
            "--set", "train.heldout_batches=1", "--set", "train.ema=0.9", "--set", "optim.G.decay=linear",
            "--set", "optim.D.decay=linear", "--set", "speed.threads=1", "--no-progress"]
KILLS = 5  # kill/resume cycles; odd ones wait for a checkpoint's temporary file, even ones for any progress
PAUSE_S = 0.15  # the checkpoint write pauses twice this long (test hook), widening the window for kills


def ganland_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganland.cli", *args]


def start(args: list[str], log: Path, pause: bool) -> subprocess.Popen:
    env = dict(os.environ)
    if pause:
        env[PAUSE_ENV] = str(PAUSE_S)
    else:
        env.pop(PAUSE_ENV, None)
    with open(log, "ab") as err:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll until `condition()` holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the training process made no progress within a minute")


def temporary_files(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")] if folder.is_dir() else []


def stats_without_time(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.e2e
def test_sigkill_at_random_moments_then_resume_is_bitwise_exact(tmp_path):
    seed = int(time.time() * 1000) % 2**31
    rng = random.Random(seed)
    data = write_fake_mnist(tmp_path / "mnist", n_train=64, n_test=32)
    log = tmp_path / "stderr.log"
    train_args = ["train", "fashion-dcgan", "--set", f"data.root={data}", *SETTINGS, "--steps", str(STEPS)]

    ref = tmp_path / "ref"
    assert start(ganland_cmd(*train_args, "--out", str(ref)), log, pause=False).wait(120) == 0, log.read_text()

    run = tmp_path / "run"
    proc = start(ganland_cmd(*train_args, "--out", str(run)), log, pause=True)
    kills, during_write, resumed_from = 0, 0, []
    for cycle in range(KILLS):
        if cycle == 0:  # nothing can be resumed before the first checkpoint exists
            wait_for(lambda: list_checkpoints(run), proc)
        if cycle % 2 == 0:  # at any moment once the process is working
            size = (run / "stats.jsonl").stat().st_size if (run / "stats.jsonl").exists() else 0
            alive = wait_for(lambda: (run / "stats.jsonl").exists() and (run / "stats.jsonl").stat().st_size > size, proc)
            time.sleep(rng.uniform(0.0, 0.4))
        else:  # inside a checkpoint write: half-way through the temporary file or before its rename
            alive = wait_for(lambda: temporary_files(run), proc)
            time.sleep(rng.uniform(0.0, 2 * PAUSE_S))
        if not alive or proc.poll() is not None:
            break
        writing = bool(temporary_files(run))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        kills += 1
        during_write += writing
        resumed_from.append(int(load_checkpoint(list_checkpoints(run)[0])["counters"]["step"]))
        last = cycle == KILLS - 1  # the last resume runs to the end, without the slow writes
        proc = start(ganland_cmd("train", "--resume", str(run), "--no-progress"), log, pause=not last)
    assert proc.wait(120) == 0, log.read_text()[-3000:]

    context = f"(random seed {seed}, {kills} kills, {during_write} during a write, resumed from {resumed_from})"
    print(context)
    assert kills == KILLS and during_write >= 1, context
    assert temporary_files(run) == [], context
    # Losses, logits, gradient norms, epoch records: the same numbers, bit for bit.
    assert stats_without_time(run) == stats_without_time(ref), context
    # Final weights, EMA, optimizer states and counters.
    a, b = load_checkpoint(list_checkpoints(ref)[0]), load_checkpoint(list_checkpoints(run)[0])
    assert a["counters"]["step"] == b["counters"]["step"] == STEPS
    for key in ("G", "D", "G_ema"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key]), (key, context)
    for key in ("opt_G", "opt_D"):
        sa, sb = a[key]["state"], b[key]["state"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i]), context
        assert a[key]["param_groups"] == b[key]["param_groups"], context
    # Every picture written along the way, and fresh samples from the final generator.
    ref_pngs = sorted(p.name for p in (ref / "samples").iterdir())
    assert sorted(p.name for p in (run / "samples").iterdir()) == ref_pngs
    for name in ref_pngs:
        assert (ref / "samples" / name).read_bytes() == (run / "samples" / name).read_bytes(), (name, context)
    assert np.array_equal(ganland.sample(ref, n=16, seed=5)["images"], ganland.sample(run, n=16, seed=5)["images"])
