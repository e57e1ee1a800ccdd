"""What a checkpoint holds, alone: every random stream's state, and a Trainer's whole state in and
out (no training needed)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ganland.errors import CheckpointError
from ganland.training.loop import Trainer
from ganland.training.state import global_rng_state, load_rng_state, rng_state, seed_everything, set_global_rng_state

from .test_loop import tiny


def draws() -> tuple:
    return torch.rand(3).tolist(), random.random(), np.random.rand(2).tolist(), np.random.randn()


def test_global_streams_round_trip_and_seeding():
    seed_everything(7)
    first = draws()
    seed_everything(7)
    assert draws() == first
    np.random.randn()  # a cached Gaussian half is part of NumPy's state too
    state = global_rng_state()
    ahead = draws()
    draws()
    set_global_rng_state(state)
    assert draws() == ahead


def test_noise_stream_round_trip_and_a_move_to_another_device_kind(capsys):
    noise = torch.Generator().manual_seed(3)
    saved = rng_state(noise, torch.device("cpu"))
    ahead = torch.randn(4, generator=noise)
    other = torch.Generator().manual_seed(99)
    load_rng_state(saved, other, torch.device("cpu"), seed=3, step=10)
    assert torch.equal(torch.randn(4, generator=other), ahead)
    assert capsys.readouterr().err == ""
    moved = dict(saved, gen_device="cuda")  # saved on a GPU, resumed on the CPU
    load_rng_state(moved, other, torch.device("cpu"), seed=3, step=10)
    assert torch.equal(torch.randn(4, generator=other),
                       torch.randn(4, generator=torch.Generator().manual_seed(3 * 1_000_003 + 10)))
    assert "saved on another kind of device (cuda)" in capsys.readouterr().err


def test_a_trainers_state_round_trips_without_training(fake_mnist, tmp_path):
    cfg = tiny(fake_mnist, **{"train.steps": 5, "train.ema": 0.9})
    a = Trainer(cfg, tmp_path / "a")
    with torch.no_grad():
        next(a.G.parameters()).add_(1.0)
    a.step, a.d_steps, a.epoch, a.images = 7, 7, 1, 112
    a.batches.next()
    a.guard.used = 1
    state = a.state_dict()
    b = Trainer(cfg, tmp_path / "b")
    b.load_state_dict(state)
    assert (b.step, b.d_steps, b.epoch, b.images, b.guard.lr_scale) == (7, 7, 1, 112, 0.5)
    assert all(torch.equal(x, y) for x, y in zip(a.G.state_dict().values(), b.G.state_dict().values()))
    assert b.batches.pos == a.batches.pos and torch.equal(b.batches.perm, a.batches.perm)
    assert b.clock.total() == pytest.approx(state["counters"]["seconds"])
    with pytest.raises(CheckpointError, match="does not fit this run"):
        b.load_state_dict({**state, "G": {"nonsense": torch.zeros(1)}})
