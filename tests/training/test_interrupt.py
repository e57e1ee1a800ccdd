"""A clean stop on Ctrl-C (SIGINT) and SIGTERM: the run finishes its step, saves a checkpoint and
its statistics, says how to continue and exits with 130 / 143; a second signal stops at once
without damaging anything. Resumed, an interrupted run ends bit for bit where an uninterrupted
one does (like the SIGKILL test)."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ganland
from ganland.config import load_config
from ganland.errors import Interrupted
from ganland.evaluation import read_scores
from ganland.training.checkpoint import PAUSE_ENV, list_checkpoints, load_checkpoint, verify_file
from ganland.training.distributed import World
from ganland.training.interrupt import StopRequest, newest_checkpoint_text, resume_command
from ganland.training.loop import Trainer
from ganland.training.runs import resume, train

from conftest import write_fake_mnist  # tests/conftest.py (tests/ is on sys.path)
from .test_kill_resume import SETTINGS, stats_without_time, temporary_files, wait_for
from .test_loop import read_stats, tiny

STEPS = 60


def has_trained(run: Path) -> bool:
    """stats.jsonl holds a record of a trained step: the speed record (step 0) comes before the
    first step, and a signal in the set-up after it stops the run, rightly, at step 0."""
    path = run / "stats.jsonl"
    if not path.is_file():
        return False
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) >= 1:
                return True
        except ValueError:  # a line still being written
            pass
    return False


# --- units -------------------------------------------------------------------------------------------


def test_first_signal_asks_second_stops_at_once_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert stop.signum is None and stop.name == ""
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs in the main thread at the next bytecode boundary
        assert stop.signum == signal.SIGTERM and stop.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before  # restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_no_handler_is_installed():
    seen = {}

    def run():
        with StopRequest() as stop:
            seen["installed"] = bool(stop._previous)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == {"installed": False}


def test_resume_command_and_what_is_left(tmp_path):
    assert resume_command(Path("runs/a b"), {"train.steps": 2000}) == "ganland train --resume 'runs/a b' --steps 2000"
    assert resume_command(Path("r"), {"train.minutes": 10.0}) == "ganland train --resume r --minutes 10"
    assert resume_command(Path("r"), {"train.epochs": 2.5}) == "ganland train --resume r --epochs 2.5"
    assert resume_command(Path("r"), {"train.epochs": 1 / 3}) == "ganland train --resume r --epochs 0.3333333333333333"
    assert resume_command(Path("r"), {"train.steps": 5, "train.minutes": 1.0}) == "ganland train --resume r"
    two = World(rank=1, size=2, local_rank=1, local_size=2)  # a torchrun run goes on under torchrun
    assert (resume_command(Path("r"), {"train.steps": 8}, two)
            == "torchrun --standalone --nproc-per-node=2 -m ganland train --resume r --steps 8")
    nodes = World(rank=3, size=4, local_rank=1, local_size=2)
    assert resume_command(Path("r"), {}, nodes).startswith("torchrun <the same torchrun options as before> -m ganland")
    assert "nothing to resume" in newest_checkpoint_text(tmp_path, "cmd")  # never claims what is not there
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_000000004.pt").write_bytes(b"x")
    assert newest_checkpoint_text(tmp_path, "cmd") == (f"the newest checkpoint {tmp_path}/checkpoints/"
                                                       "step_000000004.pt is intact: continue with `cmd`")


@pytest.mark.e2e
def test_the_api_raises_interrupted_after_saving(fake_mnist, tmp_path):
    """In-process: a SIGINT mid-run ends `ganland.train` with Interrupted once the step is saved."""
    cfg = tiny(fake_mnist, **{"train.steps": 100_000, "train.log_every": 5, "train.checkpoint_every": 0,
                              "train.sample_every": 0, "speed.threads": 1, "speed.amp": "fp32"})  # nothing to time
    done = threading.Event()

    def interrupt_when_training():  # not on a fixed timer: set-up can take seconds on a loaded machine
        while not done.is_set():
            if has_trained(tmp_path / "run"):  # training has begun (and its handlers are in)
                os.kill(os.getpid(), signal.SIGINT)
                return
            done.wait(0.05)

    thread = threading.Thread(target=interrupt_when_training, daemon=True)
    thread.start()
    try:
        with pytest.raises(Interrupted) as info:
            train(cfg, str(tmp_path / "run"))
    finally:
        done.set()
        thread.join()
    e = info.value
    assert e.exit_code == 130 and e.signum == signal.SIGINT
    ck = load_checkpoint(list_checkpoints(tmp_path / "run")[0])
    step = ck["counters"]["step"]
    assert 0 < step < 100_000
    assert str(e) == (f"stopped by SIGINT after step {step}; saved {tmp_path}/run/checkpoints/step_{step:09d}.pt "
                      f"and the statistics so far. Continue with `ganland train --resume {tmp_path}/run --steps 100000`")
    last = read_stats(tmp_path / "run")[-1]
    assert last["step"] == step and (last.get("partial") or step % 5 == 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers given back


# --- the command line, in a process of its own ----------------------------------------------------------


def ganland_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganland.cli", *args]


def start(args: list[str], log: Path, pause: float = 0.0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != PAUSE_ENV}
    if pause:
        env[PAUSE_ENV] = str(pause)
    with open(log, "wb") as err:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The data and an uninterrupted run of STEPS steps."""
    tmp = tmp_path_factory.mktemp("interrupt")
    data = write_fake_mnist(tmp / "mnist", n_train=64, n_test=32)
    args = ["train", "fashion-dcgan", "--set", f"data.root={data}", *SETTINGS, "--steps", str(STEPS)]
    proc = start(ganland_cmd(*args, "--out", str(tmp / "ref")), tmp / "ref.log")
    assert proc.wait(120) == 0, (tmp / "ref.log").read_text()
    return args, tmp / "ref"


def assert_same_run(run: Path, ref: Path, context: str) -> None:
    """Stats (but wall-clock), final weights, every picture and fresh samples: bit for bit."""
    assert stats_without_time(run) == stats_without_time(ref), context
    a, b = load_checkpoint(list_checkpoints(ref)[0]), load_checkpoint(list_checkpoints(run)[0])
    assert a["counters"]["step"] == b["counters"]["step"] == STEPS
    for key in ("G", "D", "G_ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), (key, context)
    names = sorted(p.name for p in (ref / "samples").iterdir())
    assert sorted(p.name for p in (run / "samples").iterdir()) == names, context
    for name in names:
        assert (ref / "samples" / name).read_bytes() == (run / "samples" / name).read_bytes(), (name, context)
    assert np.array_equal(ganland.sample(ref, n=16, seed=5)["images"], ganland.sample(run, n=16, seed=5)["images"])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.e2e
def test_a_signal_stops_cleanly_and_the_resumed_run_is_bitwise_exact(reference, tmp_path, sig):
    args, ref = reference
    rng = random.Random()
    run, log = tmp_path / "run", tmp_path / "stderr.log"
    proc = start(ganland_cmd(*args, "--out", str(run)), log)
    wait_for(lambda: has_trained(run), proc)
    time.sleep(rng.uniform(0.0, 0.5))
    proc.send_signal(sig)
    code = proc.wait(60)
    err = log.read_text()
    assert code == 128 + sig, err
    m = re.search(r"ganland: stopped by (\w+) after step (\d+); saved (\S+) and the statistics so far\. "
                  r"Continue with `(.+)`\n", err)
    assert m, err
    step = int(m.group(2))
    assert m.group(1) == sig.name and 0 < step < STEPS
    assert m.group(3) == str(run / "checkpoints" / f"step_{step:09d}.pt") == str(list_checkpoints(run)[0])
    assert m.group(4) == f"ganland train --resume {run} --steps {STEPS}"
    verify_file(Path(m.group(3)))
    assert read_stats(run)[-1]["step"] == step  # the statistics so far
    assert "received: finishing this step" in err

    # The printed command continues the run; it ends where the uninterrupted run did.
    resumed = subprocess.run(ganland_cmd(*m.group(4).split()[1:], "--no-progress"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_run(run, ref, f"stopped by {sig.name} at step {step}")


@pytest.mark.slow
@pytest.mark.e2e
def test_a_second_ctrl_c_stops_at_once_and_damages_nothing(reference, tmp_path):
    """The first Ctrl-C asks for a clean stop; the second arrives while a checkpoint is being written
    (the test hook slows each write down) and stops the process there. The write is abandoned
    cleanly, the message names only what exists, and the run still resumes exactly."""
    args, ref = reference
    for attempt in range(3):  # the first signal may land just after a checkpoint step: then no write follows
        run, log = tmp_path / f"run{attempt}", tmp_path / f"stderr{attempt}.log"
        proc = start(ganland_cmd(*args, "--out", str(run)), log, pause=0.4)
        wait_for(lambda: len(list_checkpoints(run)) >= 2, proc)  # step 0 and one periodic checkpoint
        proc.send_signal(signal.SIGINT)
        if wait_for(lambda: temporary_files(run), proc):
            proc.send_signal(signal.SIGINT)
            break
        proc.wait(60)
    else:
        pytest.fail("the first Ctrl-C never came before a checkpoint write in 3 attempts")
    assert proc.wait(60) == 130
    err = log.read_text()
    m = re.search(r"ganland: stopped at once by a second signal at step (\d+); the newest "
                  r"checkpoint (\S+) is intact: continue with `(.+)`\n", err)
    assert m, err
    assert temporary_files(run) == []  # the abandoned write left nothing behind
    newest = list_checkpoints(run)
    assert m.group(2) == str(newest[0])
    for path in newest:
        verify_file(path)
    resumed = subprocess.run(ganland_cmd(*m.group(3).split()[1:], "--no-progress"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_run(run, ref, f"stopped at once at step {m.group(1)}")


def signal_at_step(monkeypatch, step: int, sig=signal.SIGINT) -> None:
    """Send `sig` to this process as the training step `step` ends (as if Ctrl-C came then)."""
    original = Trainer._train_one_step

    def one_step(self):
        original(self)
        if self.step == step:
            os.kill(os.getpid(), sig)
            time.sleep(0.01)  # let the handler run

    monkeypatch.setattr(Trainer, "_train_one_step", one_step)


@pytest.mark.e2e
def test_a_signal_in_the_last_step_lets_the_run_finish(fake_mnist, tmp_path, monkeypatch):
    signal_at_step(monkeypatch, 6)
    result = train(tiny(fake_mnist, **{"train.steps": 6}), str(tmp_path / "run"))  # no Interrupted: it is done
    assert result.step == 6 and (tmp_path / "run" / "samples" / "step_000000006.png").is_file()


@pytest.mark.e2e
def test_an_evaluation_due_when_the_signal_came_is_done_by_the_resumed_run(tmp_path, monkeypatch):
    """Scoring can take minutes: a signal puts it off, the checkpoint says so, the resumed run does it first."""
    cfg = load_config("ring", {"train.steps": 8, "train.progress": False, "eval.every": 2, "eval.n_samples": 300,
                               "train.log_every": 2, "train.checkpoint_every": 0, "train.sample_every": 0})
    ref = train(cfg, str(tmp_path / "ref")).run_dir
    with monkeypatch.context() as m:
        signal_at_step(m, 4)
        with pytest.raises(Interrupted):
            train(cfg, str(tmp_path / "run"))
    run = tmp_path / "run"
    assert [s.step for s in read_scores(run)] == [2]  # step 4's evaluation was put off
    assert load_checkpoint(list_checkpoints(run)[0])["pending_eval"] is True
    resume(run)
    a, b = read_scores(ref), read_scores(run)
    assert [s.step for s in b] == [2, 4, 6, 8]
    assert [s.metrics for s in a] == [s.metrics for s in b]
