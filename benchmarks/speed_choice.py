"""The machine-dependent speed choice (`speed.threads: 0`, `speed.amp: auto`; training/autotune.py),
measured: what it times and picks for each recipe's model on this machine, and what the pick is
worth against the fixed defaults it replaced (torch's threads, one per core, and fp32).

For each recipe:
  candidates  the seconds per training step of every (threads, amp) candidate, timed by
              `autotune.tune` on the run's own model exactly as a run does (fresh cache);
  A B         training throughput (images shown to D per second, `train.minutes` runs in fresh
              subprocesses, set-up excluded) with the chosen settings against the old defaults,
              in turn: A B A B.

    python benchmarks/speed_choice.py [--recipes gaussian-1d,ring,fashion-dcgan] [--seconds 30] [--repeats 2]
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

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"train.progress": False, "train.sample_every": 0, "train.checkpoint_every": 0,
         "train.checkpoint_minutes": 0, "train.heldout_batches": 0, "eval.every": 0}


def choose(recipe: str) -> dict:
    """What a long run of `recipe` would time and choose here (no cache)."""
    from ganland.config import load_config
    from ganland.training import autotune
    from ganland.training.loop import Trainer

    cfg = load_config(recipe, {**QUIET, "train.minutes": 10.0})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        choice = autotune.tune(0, "auto", "benchmark", autotune.step_timer(trainer), None)
    return {"threads": choice.threads, "amp": choice.amp, "seconds_per_step": choice.seconds_per_step,
            "candidates": choice.measured, "machine": choice.machine}


def throughput(recipe: str, seconds: float, sets: dict) -> float:
    """Images per second of a `seconds`-long run in a fresh process (its own cache folder)."""
    code = ("import json, sys; from ganland.config import load_config; from ganland.training.runs import train\n"
            "cfg = load_config(sys.argv[1], json.loads(sys.argv[2])); r = train(cfg, sys.argv[3])\n"
            "rows = [json.loads(l) for l in open(sys.argv[3] + '/stats.jsonl')]\n"
            "print(json.dumps({'images': max(x.get('images', 0) for x in rows), 'seconds': r.seconds}))")
    overrides = {**QUIET, "train.minutes": seconds / 60, "train.log_every": 10, **sets}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GANLAND_CACHE": str(Path(tmp) / "cache")}
        out = subprocess.run([sys.executable, "-c", code, recipe, json.dumps(overrides), str(Path(tmp) / "run")],
                             capture_output=True, text=True, env=env)
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        rec = json.loads(out.stdout.strip().splitlines()[-1])
    return rec["images"] / rec["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="gaussian-1d,ring,fashion-dcgan")
    ap.add_argument("--seconds", type=float, default=30.0, help="training seconds per A or B measurement")
    ap.add_argument("--repeats", type=int, default=2, help="A B rounds")
    args = ap.parse_args()
    import torch

    results = {}
    for recipe in args.recipes.split(","):
        picked = choose(recipe)
        chosen = {"speed.threads": picked["threads"], "speed.amp": picked["amp"]}
        old = {"speed.threads": torch.get_num_threads(), "speed.amp": "fp32"}  # torch's default: every core
        if chosen == old:  # nothing changed: an A B run would only measure noise
            results[recipe] = {**picked, "same_as_old_defaults": True}
            continue
        rates = {"chosen": [], "old_defaults": []}
        for _ in range(args.repeats):
            rates["chosen"].append(throughput(recipe, args.seconds, chosen))
            rates["old_defaults"].append(throughput(recipe, args.seconds, old))
        med = {k: statistics.median(v) for k, v in rates.items()}
        results[recipe] = {**picked, "images_per_s": med, "runs": rates,
                           "speedup": med["chosen"] / med["old_defaults"]}
    print(json.dumps({"benchmark": "speed_choice", "torch": torch.__version__, "cores": os.cpu_count(),
                      "seconds": args.seconds, "repeats": args.repeats, "recipes": results}, indent=1))


if __name__ == "__main__":
    main()
