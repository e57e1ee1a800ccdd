"""What a checkpoint holds: the whole state of a run (`run_state`, `load_run_state`), and its
random streams (seeding, and their states).

The noise generator (device) draws z, fake labels and penalty mixing weights; the data order has
its own CPU generator (batches.py); model initialisation and anything else that uses torch's,
Python's or NumPy's global generators draws from those, seeded here and saved with the rest.
"""
from __future__ import annotations

import random
import sys

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Global seeds first: model initialisation draws from the global generators."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def global_rng_state() -> dict:
    np_state = np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return {
        "cuda": cuda,
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]) + [random.getstate()[0], random.getstate()[2]],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }


def set_global_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if s.get("cuda") is not None and torch.cuda.is_available() and len(s["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(s["cuda"])
    py = s["python"]
    random.setstate((py[-2], tuple(py[:-2]), py[-1]))
    n = s["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))


def rng_state(noise: torch.Generator, device: torch.device) -> dict:
    """Every random stream's state: the noise generator (and its device kind) and the global ones."""
    return {"gen": noise.get_state(), "gen_device": device.type, **global_rng_state()}


def load_rng_state(rng: dict, noise: torch.Generator, device: torch.device, seed: int, step: int) -> None:
    """Restore every stream. When the run moves to another kind of device (a generator's state
    does not convert between kinds), the noise continues as a fresh stream seeded from (seed,
    step), with a warning."""
    saved = rng.get("gen_device")  # absent before 2026-11-23: then only a failed load tells
    moved = saved not in (None, device.type)
    if not moved:
        try:
            noise.set_state(rng["gen"])
        except RuntimeError:
            if saved is not None:
                raise
            moved = True
    if moved:
        noise.manual_seed(seed * 1_000_003 + step)
        print(f"ganland: warning: this run's noise stream was saved on another kind of device "
              f"({saved or 'unknown'}) than this one ({device.type}); it continues with a fresh stream "
              "seeded from the seed and step, so it is not bit-for-bit what an unmoved run would do",
              file=sys.stderr)
    set_global_rng_state(rng)


# ---- the whole run in a checkpoint ------------------------------------------------------------------


def run_state(tr) -> dict:
    """Everything a `Trainer` needs to continue exactly where it is (and to rebuild its models)."""
    from ..version import __version__

    return {
        "ganland_version": __version__,
        "config_yaml": tr.cfg.to_yaml(),
        "data_info": {"shape": list(tr.train_set.shape), "n_classes": tr.train_set.n_classes,
                      "class_names": list(tr.train_set.class_names or []) or None,
                      "is_image": bool(tr.train_set.is_image),
                      "cond_shape": list(tr.cond_shape) if tr.cond_shape is not None else None},
        "G": tr.G.state_dict(), "D": tr.D.state_dict(),
        "G_ema": tr.G_ema.state_dict() if tr.G_ema is not None else None,
        "opt_G": tr.opt_G.state_dict(), "opt_D": tr.opt_D.state_dict(),
        "counters": {"step": tr.step, "d_steps": tr.d_steps, "epoch": tr.epoch, "images": tr.images,
                     "seconds": tr.clock.total()},
        "rng": rng_state(tr.gen, tr.device),
        "batches": tr.batches.state_dict(),
        **tr.log.state_dict(),  # "window", "epoch_means"
        "guard": tr.guard.state_dict(),
        "schedule": tr.schedule.state_dict(),
        "augment": tr.augmenter.state_dict() if tr.augmenter is not None else None,
        "pending_eval": tr._pending_eval,  # an evaluation of this step that a signal put off
        "speed": ({"threads": tr.speed.threads, "amp": tr.speed.amp, "machine": tr.speed.machine,
                   "seconds_per_step": tr.speed.seconds_per_step} if tr.speed is not None else None),
    }


def load_run_state(tr, ck: dict) -> None:
    """Put a `Trainer` into the state `run_state` saved; a checkpoint that does not fit is a CheckpointError."""
    from ..errors import CheckpointError

    try:
        tr.G.load_state_dict(ck["G"])
        tr.D.load_state_dict(ck["D"])
        if tr.G_ema is not None:
            tr.G_ema.load_state_dict(ck["G_ema"])
        tr.opt_G.load_state_dict(ck["opt_G"])
        tr.opt_D.load_state_dict(ck["opt_D"])
        c = ck["counters"]
        tr.step, tr.d_steps, tr.epoch, tr.images = int(c["step"]), int(c["d_steps"]), int(c["epoch"]), int(c["images"])
        tr.clock.reset(float(c["seconds"]))
        load_rng_state(ck["rng"], tr.gen, tr.device, tr.cfg.train.seed, tr.step)
        tr.batches.load_state_dict(ck["batches"])
        tr.log.load_state_dict(ck, tr.device)
        # Checkpoints written before the schedule had a state hold rollback-halved rates in their config.
        tr.guard.load_state_dict(ck.get("guard") or {}, rates_halved_in_config="schedule" not in ck)
        tr.schedule.load_state_dict(ck.get("schedule") or {}, tr.step, tr.guard.lr_scale)
        if tr.augmenter is not None:
            tr.augmenter.load_state_dict(ck["augment"])
        tr._pending_eval = bool(ck.get("pending_eval", False))
        tr._saved_speed = ck.get("speed")  # kept on the same machine, so the run goes on bit for bit
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise CheckpointError(f"checkpoint {ck.get('path', '')} does not fit this run (different model or "
                              f"ganland version?): {type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
