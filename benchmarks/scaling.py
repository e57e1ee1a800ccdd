"""Data-parallel scaling: images/s of one process against two under torchrun, on this machine, and
the communication each recipe needs per step (the cost model for more processes and nodes).

For each recipe, in turn (A B C, --repeats rounds; each a fresh `train.minutes` run, set-up
excluded, images shown to D per second of training as stats.jsonl counts them):
  one_process    `ganland train`, every core (torch's threads: one per core)
  one_thread     `ganland train --set speed.threads=1`: one process on one core
  two_processes  `torchrun --standalone --nproc-per-node=2 -m ganland train`, one thread each
The scaling efficiency is two_processes / (2 x one_thread): what the second process adds per core.
Communication: every G step all-reduces G's gradients once and D's n_critic times (fp32), plus a
few small all-reduces of flags and logged means; a ring all-reduce moves 2 (p - 1) / p of those
bytes through each process's link. Also the measured time of one such all-reduce here.

    python benchmarks/scaling.py [--recipes gaussian-1d,ring,fashion-dcgan] [--seconds 20] [--repeats 2]
Prints one JSON object. Wants the machine to itself.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

QUIET = ["--set", "train.sample_every=0", "--set", "train.checkpoint_every=0", "--set", "train.checkpoint_minutes=0",
         "--set", "train.heldout_batches=0", "--set", "train.log_every=10", "--no-progress"]
BIN = Path(sys.executable).parent


def rate(recipe: str, seconds: float, how: str) -> float:
    """Images per second of one `seconds`-long run (`how`: one_process, one_thread, two_processes)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        args = ["train", recipe, "--minutes", str(seconds / 60), "--out", str(out), *QUIET]
        if how == "one_thread":
            args += ["--set", "speed.threads=1"]
        if how == "two_processes":
            cmd = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2", "-m", "ganland", *args]
        else:
            cmd = [str(BIN / "ganland"), *args]
        env = {**os.environ, "GANLAND_CACHE": str(Path(tmp) / "cache"), "OMP_NUM_THREADS": "1"} \
            if how == "two_processes" else {**os.environ, "GANLAND_CACHE": str(Path(tmp) / "cache")}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        rows = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
        last = [r for r in rows if r.get("kind") == "train"][-1]
        return last["images"] / last["seconds"]


def communication(recipe: str) -> dict:
    """Bytes all-reduced per generator step, from the recipe's model sizes."""
    from ganland.build import build_dataset, build_models
    from ganland.config import load_config

    cfg = load_config(recipe)
    data = build_dataset(cfg, "train")
    G, D = build_models(cfg, data.shape, data.n_classes)
    g, d = (sum(p.numel() for p in m.parameters()) for m in (G, D))
    per_step = 4 * (g + cfg.train.n_critic * d)
    return {"G_params": g, "D_params": d, "n_critic": cfg.train.n_critic, "batch_size": cfg.train.batch_size,
            "gradient_bytes_per_step": per_step, "all_reduces_per_step": 1 + cfg.train.n_critic + 1}


def allreduce_ms(numel: int) -> float:
    """Milliseconds of one fp32 all-reduce of `numel` values between two processes here (Gloo)."""
    code = ("import time, torch, torch.distributed as dist\n"
            "dist.init_process_group('gloo'); x = torch.zeros(int(__import__('sys').argv[1]))\n"
            "for _ in range(3): dist.all_reduce(x)\n"
            "t = time.perf_counter()\n"
            "for _ in range(20): dist.all_reduce(x)\n"
            "ms = (time.perf_counter() - t) / 20 * 1000\n"
            "print(ms) if dist.get_rank() == 0 else None; dist.destroy_process_group()\n")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ar.py"
        script.write_text(code)
        done = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2", str(script), str(numel)],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="gaussian-1d,ring,fashion-dcgan")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    results = {}
    for recipe in args.recipes.split(","):
        runs = {how: [] for how in ("one_process", "one_thread", "two_processes")}
        for _ in range(args.repeats):
            for how in runs:
                runs[how].append(rate(recipe, args.seconds, how))
        med = {k: statistics.median(v) for k, v in runs.items()}
        comm = communication(recipe)
        comm["allreduce_ms_G_plus_D"] = allreduce_ms(comm["G_params"] + comm["D_params"])
        results[recipe] = {"images_per_s": med, "runs": runs,
                           "two_vs_one_process": med["two_processes"] / med["one_process"],
                           "efficiency_per_core": med["two_processes"] / (2 * med["one_thread"]),
                           "communication": comm}
    print(json.dumps({"benchmark": "scaling", "cores": os.cpu_count(), "seconds": args.seconds,
                      "repeats": args.repeats, "recipes": results}, indent=1))


if __name__ == "__main__":
    main()
