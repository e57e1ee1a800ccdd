"""The divergence guard (docs/robustness.md): non-finite losses, weights or optimizer state and a
saturated discriminator are detected at logging, checkpoint and final steps; the run rolls back
to the newest checkpoint with both learning rates halved, or stops with a DivergenceError once
train.guard_retries are used up; no checkpoint ever holds a NaN or an infinity."""
from __future__ import annotations

import math
import re

import pytest
import torch
import yaml

from ganland.cli import main
from ganland.errors import ConfigError, DivergenceError
from ganland.training import checkpoint, loop
from ganland.training.checkpoint import list_checkpoints, load_checkpoint
from ganland.training.guard import CRITIC_LIMIT, DivergenceGuard
from ganland.training.loop import Trainer
from ganland.training.runs import resume, train

from .test_loop import read_stats, tiny

FAST = {"train.sample_every": 0, "train.heldout_batches": 1, "train.ema": 0.9}


def poison_after(monkeypatch, steps: set[int], every_time: bool = False) -> list[int]:
    """Fill one weight of D with NaN right after each generator step in `steps` (once each, or
    every time the run reaches it again after a rollback). Returns the steps poisoned so far."""
    poisoned: list[int] = []
    original = Trainer._train_one_step

    def step(self):
        original(self)
        if self.step in steps and (every_time or self.step not in poisoned):
            poisoned.append(self.step)
            with torch.no_grad():
                next(self.D.parameters()).fill_(float("nan"))

    monkeypatch.setattr(Trainer, "_train_one_step", step)
    return poisoned


def tensors_in(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors_in(v)


@pytest.fixture
def saved(monkeypatch) -> list[int]:
    """Every checkpoint the trainer writes is checked for NaN/inf in any tensor (weights, EMA,
    optimizer state, running sums of the logged values); returns the steps saved."""
    steps: list[int] = []
    original = checkpoint.save_checkpoint

    def save(run, step, state, keep):
        bad = [t for t in tensors_in(state) if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        assert not bad, f"a non-finite tensor was about to be saved in the checkpoint of step {step}"
        steps.append(step)
        return original(run, step, state, keep)

    monkeypatch.setattr(checkpoint, "save_checkpoint", save)
    return steps


def guard_records(run) -> list[dict]:
    return [r for r in read_stats(run) if r["kind"] == "guard"]


@pytest.mark.parametrize(
    "poison, log_every, checkpoint_every, detected, back_to, problem",
    [
        (7, 2, 4, 8, 4, "non-finite loss_D"),  # NaN losses at a logging step (after a log at step 6)
        (4, 5, 4, 4, 0, "non-finite weights or optimizer state"),  # NaN weights at a checkpoint step
        (12, 5, 5, 12, 10, "non-finite weights or optimizer state"),  # the final state, before it is saved
    ],
    ids=["at-log", "at-checkpoint", "at-end"],
)
@pytest.mark.e2e
def test_non_finite_values_roll_back_with_halved_learning_rates(fake_mnist, tmp_path, monkeypatch, capsys, saved,
                                                                 poison, log_every, checkpoint_every, detected,
                                                                 back_to, problem):
    poison_after(monkeypatch, {poison})
    cfg = tiny(fake_mnist, **FAST, **{"train.steps": 12, "train.log_every": log_every,
                                      "train.checkpoint_every": checkpoint_every})
    result = train(cfg, str(tmp_path / "run"))
    run = result.run_dir
    assert result.step == 12

    [record] = guard_records(run)
    assert record["detected_at"] == detected and record["step"] == back_to
    assert problem in record["problem"]
    assert record["action"] == (f"rolled back to step {back_to} (step_{back_to:09d}.pt), retry 1 of 2 with both "
                                "learning rates halved (optim.G.lr=0.0002, optim.D.lr=0.0002 -> optim.G.lr=0.0001, "
                                "optim.D.lr=0.0001)")
    err = capsys.readouterr().err
    assert f"ganland: guard: step {detected}: {record['problem']}; rolled back to step {back_to}" in err

    # The diverged stretch left no trace in the statistics: each logging step once, all finite.
    rows = [r for r in read_stats(run) if r["kind"] == "train"]
    assert [r["step"] for r in rows if not r.get("partial")] == list(range(log_every, 13, log_every))
    assert all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    # The halved rates are in force (the optimizers) and recorded as the guard's rollback count in the
    # checkpoint; config.yaml and the checkpoint's config stay what the user asked for.
    ck = load_checkpoint(list_checkpoints(run)[0])
    for text in ((run / "config.yaml").read_text(), ck["config_yaml"]):
        assert yaml.safe_load(text)["optim"]["G"]["lr"] == yaml.safe_load(text)["optim"]["D"]["lr"] == 2e-4
    assert all(g["lr"] == 1e-4 for key in ("opt_G", "opt_D") for g in ck[key]["param_groups"])
    # Counters were restored with the weights: 12 steps of 16 images, not 12 plus the discarded ones.
    assert ck["counters"]["step"] == ck["counters"]["d_steps"] == 12 and ck["counters"]["images"] == 12 * 16
    assert ck["guard"]["retries"] == 1  # the retry budget is kept across resumes
    assert saved and saved[-1] == 12


@pytest.mark.e2e
def test_retries_used_up_stop_with_a_divergence_error(fake_mnist, tmp_path, monkeypatch, saved):
    poison_after(monkeypatch, {5}, every_time=True)  # diverges again after every rollback
    cfg = tiny(fake_mnist, **FAST, **{"train.steps": 12, "train.log_every": 2, "train.checkpoint_every": 4})
    run = tmp_path / "run"
    with pytest.raises(DivergenceError) as info:
        train(cfg, str(run))
    message = str(info.value)
    assert message.startswith("training diverged at step 6: non-finite loss_D")
    assert ("The guard rolled back 2 time(s) to the last good checkpoint, halving both learning rates each time "
            "(now optim.G.lr=5e-05, optim.D.lr=5e-05), and train.guard_retries=2 are used up.") in message
    assert f"The newest checkpoint {run / 'checkpoints' / 'step_000000004.pt'} holds the last good state" in message
    assert "lower learning rates" in message
    records = guard_records(run)
    assert [r.get("action", "")[:14] for r in records] == ["rolled back to", "rolled back to", "stopped"]
    assert [p.name for p in list_checkpoints(run)] == ["step_000000004.pt", "step_000000000.pt"]
    assert saved == [0, 4]  # nothing was saved after the divergence


@pytest.mark.e2e
def test_retries_zero_stops_at_once_and_the_cli_prints_one_clear_line(fake_mnist, tmp_path, monkeypatch, capsys):
    poison_after(monkeypatch, {3})
    run = tmp_path / "run"
    args = ["train", "fashion-dcgan", "--set", f"data.root={fake_mnist}", "--set", "data.name=mnist",
            "--set", "model.z_dim=8", "--set", "model.options={g_width: 4, d_width: 4}", "--set",
            "train.batch_size=16", "--set", "train.log_every=2", "--set", "train.heldout_batches=1",
            "--set", "train.sample_every=0", "--set", "train.guard_retries=0", "--steps", "8", "--out", str(run),
            "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganland: error: training diverged at step 4: non-finite")
    assert "train.guard_retries is 0, so the guard stops without retrying" in err and "Traceback" not in err
    assert guard_records(run)[-1]["action"] == "stopped"


@pytest.mark.e2e
def test_a_saturated_discriminator_is_detected(fake_mnist, tmp_path, saved):
    # G barely learns, D learns fast: D(x) > 0.99 and D(G(z)) < 0.01 from about step 4 on.
    settings = {**FAST, "train.steps": 16, "train.log_every": 2, "train.checkpoint_every": 4,
                "optim.G.lr": 1e-9, "optim.D.lr": 0.02}
    done = train(tiny(fake_mnist, **settings), str(tmp_path / "off"))  # saturation is not checked by default
    assert done.step == 16
    d_real = [r["D_real"] for r in read_stats(done.run_dir) if r["kind"] == "train"]
    assert min(d_real[2:]) > 0.99  # it did saturate

    run = tmp_path / "on"
    with pytest.raises(DivergenceError, match=r"the discriminator saturated \(D\(x\) > 0.99 and D\(G\(z\)\) < 0.01\) "
                                              r"for \d+ discriminator steps in a row") as info:
        train(tiny(fake_mnist, **settings, **{"train.guard_saturation_steps": 4, "train.guard_retries": 1}), str(run))
    assert "rolled back 1 time(s)" in str(info.value)
    records = guard_records(run)
    assert len(records) == 2 and "saturated" in records[0]["problem"] and records[1]["action"] == "stopped"


def test_saturation_counting_unit():
    guard = DivergenceGuard(saturation_steps=3, probabilistic=True, device=torch.device("cpu"))
    out = lambda real, fake: {"D_real": torch.tensor(real), "D_fake": torch.tensor(fake)}  # noqa: E731
    for real, fake in [(0.995, 0.005), (0.995, 0.005), (0.5, 0.005), (0.995, 0.005), (0.995, 0.005)]:
        guard.observe(out(real, fake))
    assert guard.check({}, []) is None  # at most 2 in a row: the third was not saturated
    guard.observe(out(0.999, 0.001))  # the run goes on across checks: 3 in a row now
    assert "for 3 discriminator steps in a row" in guard.check({}, [])
    assert guard.state_dict() == {"run": 3}

    critic = DivergenceGuard(saturation_steps=2, probabilistic=False, device=torch.device("cpu"))
    for score in (2 * CRITIC_LIMIT, -2 * CRITIC_LIMIT):
        critic.observe({"real_logit": torch.tensor(1.0), "fake_logit": torch.tensor(score)})
    assert f"|critic score| > {CRITIC_LIMIT:g}" in critic.check({}, [])

    off = DivergenceGuard(saturation_steps=0, probabilistic=True, device=torch.device("cpu"))
    for _ in range(10):
        off.observe(out(1.0, 0.0))
    assert off.check({}, []) is None
    assert "non-finite loss_G" in off.check({"loss_D": torch.tensor(1.0), "loss_G": torch.tensor(math.inf)}, [])
    assert "weights" in off.check({}, [torch.zeros(3), torch.tensor([0.0, math.nan])])


@pytest.mark.e2e
def test_a_broken_initial_state_is_refused(fake_mnist, tmp_path, monkeypatch):
    original = loop.build_models

    def broken(*args, **kwargs):
        G, D = original(*args, **kwargs)
        with torch.no_grad():
            next(G.parameters()).fill_(math.inf)
        return G, D

    monkeypatch.setattr(loop, "build_models", broken)
    with pytest.raises(DivergenceError, match="the initial state is already broken: non-finite weights"):
        train(tiny(fake_mnist, **FAST, **{"train.steps": 4}), str(tmp_path / "run"))
    assert list_checkpoints(tmp_path / "run") == []


@pytest.mark.e2e
def test_guard_off_warns_once_and_keeps_training(fake_mnist, tmp_path, monkeypatch, capsys):
    poison_after(monkeypatch, {3})
    result = train(tiny(fake_mnist, **FAST, **{"train.steps": 8, "train.guard": False}), str(tmp_path / "run"))
    assert result.step == 8  # nobody stopped it
    err = capsys.readouterr().err
    assert err.count("ganland: warning: non-finite losses or gradients by step 4 and train.guard is off: the run "
                     "is training on NaN/inf") == 1
    assert guard_records(result.run_dir) == []
    assert "step_000000000.pt" not in [p.name for p in list_checkpoints(result.run_dir)]  # no step-0 checkpoint
    with pytest.raises(ConfigError, match="train.guard is false"):
        tiny(fake_mnist, **{"train.guard": False, "train.guard_saturation_steps": 3})

    # Its checkpoints hold NaN; turning the guard on when resuming refuses them (nothing good to return to).
    newest = list_checkpoints(result.run_dir)[0]
    with pytest.raises(DivergenceError, match=rf"the checkpoint {re.escape(str(newest))} this run resumes from is "
                                              r"already broken: non-finite .* resume with train.guard=false"):
        resume(result.run_dir, {"train.guard": True, "train.steps": 10})


# --- the guard alone: its rollback policy, given a way to restore a checkpoint --------------------------


def unit_guard(tmp_path, retries: int):
    from ganland.training.checkpoint import save_checkpoint
    from ganland.training.guard import Guard

    for step in (0, 4):
        save_checkpoint(tmp_path, step, {"config_yaml": "", "data_info": {}, "G": {}, "guard": {"retries": 0},
                                         "counters": {"step": step, "epoch": 0}}, keep=2)
    restored, records, lines = [], [], []
    guard = Guard(DivergenceGuard(0, True, torch.device("cpu")), retries, tmp_path,
                  lambda ck: (restored.append(ck["counters"]["step"]), guard.load_state_dict(ck["guard"])),
                  records.append, lines.append, {"optim.G.lr": 2e-4, "optim.D.lr": 1e-4})
    return guard, restored, records, lines


def test_guard_rolls_back_to_the_newest_checkpoint_and_halves_the_rates(tmp_path):
    guard, restored, records, lines = unit_guard(tmp_path, retries=2)
    nan = {"loss_D": torch.tensor(math.nan)}
    assert guard.healthy({"loss_D": torch.tensor(1.0)}, [torch.zeros(2)], step=6, epoch=0) and guard.lr_scale == 1.0
    assert not guard.healthy(nan, [], step=6, epoch=0)
    assert restored == [4] and guard.used == 1 and guard.lr_scale == 0.5  # the checkpoint's count, plus this one
    assert records[-1]["action"] == ("rolled back to step 4 (step_000000004.pt), retry 1 of 2 with both learning "
                                     "rates halved (optim.G.lr=0.0002, optim.D.lr=0.0001 -> optim.G.lr=0.0001, "
                                     "optim.D.lr=5e-05)")
    assert records[-1]["detected_at"] == 6 and lines[-1].startswith("ganland: guard: step 6: non-finite loss_D")
    assert not guard.healthy({}, [torch.tensor([math.inf])], step=5, epoch=0)
    assert guard.used == 2 and guard.lr_scale == 0.25 and guard.state_dict()["retries"] == 2
    with pytest.raises(DivergenceError, match=r"training diverged at step 7: non-finite weights.*rolled back 2 "
                                              r"time\(s\).*now optim.G.lr=5e-05, optim.D.lr=2.5e-05"):
        guard.healthy({}, [torch.tensor([math.nan])], step=7, epoch=0)
    assert records[-1]["action"] == "stopped" and restored == [4, 4]


def test_guard_off_checks_nothing_but_keeps_the_rate_scale(tmp_path):
    from ganland.training.guard import Guard

    off = Guard(None, 2, tmp_path, lambda ck: None, print, print, {"optim.G.lr": 1.0})
    off.load_state_dict({"retries": 1})  # a run that rolled back once, resumed with train.guard=false
    assert off.healthy({"loss_D": torch.tensor(math.nan)}, [], step=1, epoch=0) and off.lr_scale == 0.5
    off.check_start({"loss_D": torch.tensor(math.nan)}, [], None)  # nothing to check


def test_guard_refuses_a_broken_start(tmp_path):
    guard, *_ = unit_guard(tmp_path, retries=2)
    with pytest.raises(DivergenceError, match="the initial state is already broken"):
        guard.check_start({}, [torch.tensor([math.nan])], None)
    with pytest.raises(DivergenceError, match="the checkpoint c.pt this run resumes from is already broken"):
        guard.check_start({}, [torch.tensor([math.nan])], "c.pt")
    guard.check_start({}, [torch.zeros(3)], "c.pt")


@pytest.mark.e2e
def test_a_checkpoint_of_an_older_ganland_that_halved_its_config_is_not_halved_again(fake_mnist, tmp_path):
    """Before the schedule had a state, a rollback wrote the halved rates into the config. Resumed now,
    those rates are taken as they are, also on every later resume."""
    from ganland.training.checkpoint import save_checkpoint

    run = train(tiny(fake_mnist, **FAST, **{"train.steps": 4}), str(tmp_path / "run")).run_dir
    ck = load_checkpoint(list_checkpoints(run)[0])
    tree = yaml.safe_load(ck["config_yaml"])
    tree["optim"]["G"]["lr"] = tree["optim"]["D"]["lr"] = 1e-4  # halved once by the old guard
    old = {k: v for k, v in ck.items() if k not in ("schedule", "path", "skipped", "format", "format_version")}
    old.update(config_yaml=yaml.safe_dump(tree), guard={**ck["guard"], "retries": 1})
    del old["guard"]["in_config"]
    save_checkpoint(run, 5, old, keep=2)
    for steps in (6, 8):  # the first resume reads the old checkpoint, the second one a new checkpoint
        resume(run, {"train.steps": steps})
        new = load_checkpoint(list_checkpoints(run)[0])
        assert all(g["lr"] == 1e-4 for key in ("opt_G", "opt_D") for g in new[key]["param_groups"]), steps
        assert new["guard"]["retries"] == new["guard"]["in_config"] == 1
