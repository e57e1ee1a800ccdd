"""Several processes, one run (docs/distributed.md): two CPU processes with Gloo on 127.0.0.1, one
thread each, short timeouts so that a bug fails instead of hanging. They train what one process
trains (2 x 32 against 1 x 64), write one run folder, roll back together, stop together, resume
bit for bit after a SIGKILL, resume at another number of processes, score like one process, and
stop with a clear error when one of them dies."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from ganland.config import load_config
from ganland.training.checkpoint import list_checkpoints, load_checkpoint

from conftest import write_fake_mnist  # tests/conftest.py (tests/ is on sys.path)

pytestmark = pytest.mark.e2e
TIMEOUT = 120  # seconds a whole multi-process test may take before it counts as hung
DIST_TIMEOUT = 20.0  # train.dist_timeout in these runs: a lost process is noticed within this


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(rank: int, size: int, port: int, job: str, kwargs: dict, out: str) -> None:
    """One process of a run: the environment torchrun would set, one thread, then `job`."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        result = JOBS[job](rank, **kwargs)
        Path(out, f"rank{rank}.json").write_text(json.dumps({"ok": True, "result": result}))
        if dist.is_initialized():
            dist.barrier()  # leave together (as ganland's own `finish` does)
    except BaseException as e:  # noqa: B036  (report everything to the parent)
        Path(out, f"rank{rank}.json").write_text(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}",
                                                             "trace": traceback.format_exc()}))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_ranks(tmp_path: Path, job: str, size: int = 2, **kwargs) -> list[dict]:
    """`job` in `size` fresh processes (spawned, like torchrun's workers); each one's outcome."""
    out = tmp_path / f"ranks-{job}-{time.monotonic_ns()}"
    out.mkdir()
    ctx, port = mp.get_context("spawn"), free_port()
    procs = [ctx.Process(target=_child, args=(r, size, port, job, kwargs, str(out))) for r in range(size)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + TIMEOUT
    for p in procs:
        p.join(max(1.0, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
    assert not hung, f"{len(hung)} of the processes of {job} hung"
    results = []
    for r in range(size):
        f = out / f"rank{r}.json"
        results.append(json.loads(f.read_text()) if f.exists() else {"ok": False, "error": "no result (died)"})
    return results


def tiny_cfg(data: Path, **extra):
    base = {"data.name": "mnist", "data.root": str(data), "model.name": "dcgan", "model.z_dim": 8,
            "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 32, "train.log_every": 2,
            "train.sample_every": 0, "train.checkpoint_every": 4, "train.progress": False, "train.heldout_batches": 1,
            "speed.threads": 1, "train.dist_timeout": DIST_TIMEOUT}
    return load_config(None, {**base, **extra})


def toy_cfg(**extra):
    return load_config("gaussian-1d", {"train.batch_size": 64, "train.log_every": 5, "train.progress": False,
                                       "train.sample_every": 0, "train.checkpoint_every": 10, "speed.threads": 1,
                                       "train.dist_timeout": DIST_TIMEOUT, **extra})


# ---- the jobs run in each process ---------------------------------------------------------------------


def job_train(rank: int, cfg: dict, out: str, nan_at: int = -1, die_at: int = -1) -> dict:
    """Train `cfg` into `out`; optionally poison D on rank 1 after step `nan_at`, or end rank 1
    abruptly after step `die_at`. Returns the step each process ended at."""
    from ganland.training.loop import Trainer
    from ganland.training.runs import train

    original = Trainer._train_one_step

    def one_step(self):
        original(self)
        if rank == 1 and self.step == nan_at and not getattr(self, "_poisoned", False):
            self._poisoned = True
            with torch.no_grad():
                next(self.D.parameters()).fill_(float("nan"))
        if rank == 1 and self.step == die_at:
            os._exit(3)

    Trainer._train_one_step = one_step
    started = time.monotonic()
    try:
        result = train(load_config(cfg), out)
        return {"step": result.step, "seconds": time.monotonic() - started}
    finally:
        Trainer._train_one_step = original


def job_resume(rank: int, run: str, overrides: dict) -> dict:
    from ganland.training.runs import resume

    return {"step": resume(run, overrides).step}


def job_eval(rank: int, run: str, n: int) -> dict:
    """The in-training evaluation and `ganland eval` of a run, with the work split over the processes."""
    from ganland.evaluation import evaluate_run
    from ganland.generator import load
    from ganland.training.distributed import start
    from ganland.training.eval_hook import InTrainingEval

    world = start("cpu", DIST_TIMEOUT)
    model = load(run)
    cfg = load_config({**model.config.to_dict(), "eval": {"every": 1, "n_samples": n}})
    from ganland.build import build_dataset

    hook = InTrainingEval(cfg, build_dataset(cfg, "test"), model.n_classes, Path(run), world)
    from ganland.generator import generate

    score = hook.score(lambda z, c: generate(model.G, z, c, "cpu"), 7)
    offline = evaluate_run(run, n=n, record=False, world=world)
    return {"in_training": score.metrics, "offline": offline.metrics, "world_size": score.world_size}


JOBS = {"train": job_train, "resume": job_resume, "eval": job_eval}


def stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def train_rows(run: Path) -> list[dict]:
    return [r for r in stats(run) if r["kind"] == "train"]


def ok(results: list[dict]) -> list[dict]:
    for r in results:
        assert r["ok"], r.get("trace") or r["error"]
    return [r["result"] for r in results]


def single(cfg, out: Path):
    from ganland.training.runs import train

    return train(cfg, str(out))


# ---- the tests --------------------------------------------------------------------------------------


def test_two_processes_train_what_one_trains_on_the_1d_normal(tmp_path):
    cfg = toy_cfg(**{"train.steps": 40})
    one = single(cfg, tmp_path / "one").run_dir
    results = ok(run_ranks(tmp_path, "train", cfg=cfg.to_dict(), out=str(tmp_path / "two")))
    assert [r["step"] for r in results] == [40, 40]
    a, b = train_rows(one), train_rows(tmp_path / "two")
    assert [r["step"] for r in a] == [r["step"] for r in b] and a[-1]["images"] == b[-1]["images"] == 40 * 64
    for x, y in zip(a, b):  # 2 x 32 against 1 x 64: the same gradients, summed in another order
        for key in ("loss_D", "loss_G", "D_real", "grad_norm_D"):
            assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-6), (x["step"], key)
    ga = load_checkpoint(list_checkpoints(one)[0])["G"]
    gb = load_checkpoint(list_checkpoints(tmp_path / "two")[0])["G"]
    for k in ga:
        torch.testing.assert_close(gb[k], ga[k], rtol=1e-5, atol=1e-6)
    # One run folder, one stats file, each record once, one checkpoint per save.
    two = tmp_path / "two"
    assert sorted(p.name for p in two.iterdir()) == ["checkpoints", "config.yaml", "samples", "stats.jsonl"]
    assert [r["step"] for r in train_rows(two)] == list(range(5, 41, 5))
    assert [p.name for p in list_checkpoints(two)] == ["step_000000040.pt", "step_000000030.pt"]
    assert not [p for p in (two / "checkpoints").iterdir() if p.name.endswith(".tmp")]


ADAPTIVE = {"train.augment": "translation,cutout,brightness", "train.augment_target": 0.6, "train.augment_kimg": 0.5}


@pytest.mark.parametrize("batch_norm,extra", [(False, {}), (True, {}), (False, ADAPTIVE)],
                         ids=["no-bn", "bn", "no-bn-adaptive-augmentation"])
def test_two_processes_train_what_one_trains_on_a_dcgan(fake_mnist, tmp_path, batch_norm, extra):
    """Without batch norm in D the two agree to rounding, with augmentation too (its random numbers
    are drawn for the global batch; the adaptive probability sums D's verdicts over both). With
    batch norm each process normalises its own half batch (ganland has no cross-process batch norm
    on the CPU), so the numbers differ more: the stated tolerance is 5 % on the losses over 8 steps."""
    cfg = tiny_cfg(fake_mnist, **{"train.steps": 8, "model.options": {"g_width": 4, "d_width": 4,
                                                                     "d_batch_norm": batch_norm}, **extra})
    one = single(cfg, tmp_path / "one").run_dir
    ok(run_ranks(tmp_path, "train", cfg=cfg.to_dict(), out=str(tmp_path / "two")))
    tol = dict(rel=0.05) if batch_norm else dict(rel=1e-4, abs=1e-5)
    keys = ("loss_D", "loss_G") + (("aug_p", "aug_rt") if extra else ())
    rows = list(zip(train_rows(one), train_rows(tmp_path / "two")))
    assert rows
    for x, y in rows:
        for key in keys:
            if key == "aug_rt" and key not in x:  # r_t is logged from the first adjustment of p (4 D steps) on
                assert key not in y
                continue
            assert y[key] == pytest.approx(x[key], **tol), (x["step"], key)
    if extra:
        assert any(x["aug_p"] > 0 for x, _ in rows)  # the probability moved: the controller was exercised


def test_nan_on_one_process_rolls_both_back(fake_mnist, tmp_path):
    cfg = tiny_cfg(fake_mnist, **{"train.steps": 12, "train.checkpoint_every": 4})
    results = ok(run_ranks(tmp_path, "train", cfg=cfg.to_dict(), out=str(tmp_path / "run"), nan_at=5))
    assert [r["step"] for r in results] == [12, 12]
    run = tmp_path / "run"
    [guard] = [r for r in stats(run) if r["kind"] == "guard"]
    assert guard["step"] == 4 and guard["detected_at"] == 6 and "non-finite" in guard["problem"]
    for path in list_checkpoints(run):  # nothing non-finite was saved
        ck = load_checkpoint(path)
        assert all(bool(torch.isfinite(v).all()) for v in ck["D"].values() if v.is_floating_point())


def test_a_time_limit_stops_both_at_the_same_step(tmp_path):
    cfg = toy_cfg(**{"train.steps": None, "train.minutes": 0.04, "train.checkpoint_every": 0,
                     "train.checkpoint_minutes": 0})
    results = ok(run_ranks(tmp_path, "train", cfg=cfg.to_dict(), out=str(tmp_path / "run")))
    assert results[0]["step"] == results[1]["step"] > 10
    ck = load_checkpoint(list_checkpoints(tmp_path / "run")[0])
    assert ck["counters"]["step"] == results[0]["step"]


def test_a_process_that_dies_stops_the_other_with_a_clear_error(tmp_path):
    cfg = toy_cfg(**{"train.steps": 100_000})
    results = run_ranks(tmp_path, "train", cfg=cfg.to_dict(), out=str(tmp_path / "run"), die_at=20)
    assert results[1] == {"ok": False, "error": "no result (died)"}
    assert not results[0]["ok"]
    assert results[0]["error"].startswith("DistributedError: lost contact with the other training processes")
    assert "one of them stopped or crashed" in results[0]["error"]


def test_a_run_resumes_at_another_number_of_processes(tmp_path):
    """Saved by two processes, continued by one: the same data order and noise (the checkpoint's
    random state does not depend on the processes), the weights within rounding."""
    flat = {"optim.G.decay": "none", "optim.D.decay": "none"}  # a decay would follow each run's own step budget
    one = single(toy_cfg(**flat, **{"train.steps": 20}), tmp_path / "one").run_dir
    ok(run_ranks(tmp_path, "train", cfg=toy_cfg(**flat, **{"train.steps": 10}).to_dict(), out=str(tmp_path / "two")))
    a10 = load_checkpoint(one / "checkpoints" / "step_000000010.pt")
    b10 = load_checkpoint(tmp_path / "two" / "checkpoints" / "step_000000010.pt")
    assert torch.equal(a10["batches"]["gen"], b10["batches"]["gen"]) and a10["batches"]["pos"] == b10["batches"]["pos"]
    assert torch.equal(a10["rng"]["gen"], b10["rng"]["gen"])  # the noise stream: every draw was the global batch's
    from ganland.training.runs import resume

    resume(tmp_path / "two", {"train.steps": 20})  # now in this one process
    ga = load_checkpoint(list_checkpoints(one)[0])["G"]
    gb = load_checkpoint(list_checkpoints(tmp_path / "two")[0])["G"]
    for k in ga:
        torch.testing.assert_close(gb[k], ga[k], rtol=1e-5, atol=1e-6)


def test_scores_split_over_processes_are_the_one_process_scores(fake_mnist, tmp_path):
    from ganland.evaluation import evaluate_run
    from ganland.generator import generate, load
    from ganland.training.eval_hook import InTrainingEval
    from ganland.build import build_dataset

    run = single(tiny_cfg(fake_mnist, **{"train.steps": 2}), tmp_path / "run").run_dir
    [a, b] = ok(run_ranks(tmp_path, "eval", run=str(run), n=51))  # 26 samples on one process, 25 on the other
    model = load(run)
    cfg = load_config({**model.config.to_dict(), "eval": {"every": 1, "n_samples": 51}})
    hook = InTrainingEval(cfg, build_dataset(cfg, "test"), model.n_classes, run)
    alone = hook.score(lambda z, c: generate(model.G, z, c, "cpu"), 7).metrics
    offline = evaluate_run(run, n=51, record=False).metrics
    assert a == b and a["world_size"] == 2
    for mine, theirs in ((a["in_training"], alone), (a["offline"], offline)):
        for k, v in theirs.items():
            if isinstance(v, float):
                assert mine[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


def torchrun_command(*args: str) -> list[str]:
    """`torchrun --standalone --nproc-per-node=2 -m ganland ARGS` with this environment's torchrun."""
    return [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node=2", "-m", "ganland",
            *args]


def test_ganland_eval_under_torchrun_prints_the_one_process_score_once(fake_mnist, tmp_path):
    """The command itself: both processes leave the group and end with status 0 (training/distributed.py,
    exit_now), rank 0 prints the score and records it, once."""
    from ganland.evaluation import evaluate_run, read_scores

    run = single(tiny_cfg(fake_mnist, **{"train.steps": 2}), tmp_path / "run").run_dir
    p = subprocess.run(torchrun_command("eval", str(run), "--n-samples", "51"), env={**os.environ, "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("protocol:") == 1, p.stdout
    [recorded] = read_scores(run / "metrics.jsonl")
    alone = evaluate_run(run, n=51, record=False).metrics
    assert recorded.metrics["fid"] == pytest.approx(alone["fid"], rel=1e-6)
    assert f"fid {format(recorded.metrics['fid'], '.6g')}" in " ".join(p.stdout.split())


@pytest.mark.slow
def test_sigkill_of_a_two_process_run_then_resume_is_bitwise_exact(tmp_path):
    """torchrun itself, killed with its workers (SIGKILL to the process group) after a checkpoint,
    then the same command with --resume: the weights of an uninterrupted two-process run, bit for bit."""
    data = write_fake_mnist(tmp_path / "mnist", n_train=64, n_test=32)
    sets = ["--set", f"data.root={data}", "--set", "data.name=mnist", "--set", "model.z_dim=8", "--set",
            "model.options={g_width: 4, d_width: 4}", "--set", "train.batch_size=16", "--set", "train.log_every=3",
            "--set", "train.checkpoint_every=4", "--set", "train.sample_every=8", "--set", "train.heldout_batches=1",
            "--set", "train.ema=0.9", "--set", f"train.dist_timeout={DIST_TIMEOUT}", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(*args, **kw):
        return subprocess.Popen(torchrun_command(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                **kw)

    ref = tmp_path / "ref"
    proc = torchrun("train", "fashion-dcgan", *sets, "--steps", "40", "--out", str(ref))
    assert proc.wait(TIMEOUT) == 0, proc.stderr.read().decode()[-3000:]
    run = tmp_path / "run"
    proc = torchrun("train", "fashion-dcgan", *sets, "--steps", "40", "--out", str(run), start_new_session=True)
    deadline = time.monotonic() + TIMEOUT
    while not any(p.name != "step_000000000.pt" for p in list_checkpoints(run)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.02)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    killed_at = load_checkpoint(list_checkpoints(run)[0])["counters"]["step"]
    assert killed_at < 40
    proc = torchrun("train", "--resume", str(run))
    assert proc.wait(TIMEOUT) == 0, proc.stderr.read().decode()[-3000:]
    a, b = load_checkpoint(list_checkpoints(ref)[0]), load_checkpoint(list_checkpoints(run)[0])
    assert a["counters"]["step"] == b["counters"]["step"] == 40
    for key in ("G", "D", "G_ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), (key, killed_at)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(stats(run)) == drop(stats(ref))
    import ganland

    assert np.array_equal(ganland.sample(ref, n=8, seed=1)["images"], ganland.sample(run, n=8, seed=1)["images"])
