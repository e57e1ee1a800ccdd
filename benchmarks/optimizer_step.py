"""The optimizer lever (issue 5, item 3): Adam's update for G and D of a recipe, three ways.

Builds the recipe's G and D, gives every parameter a random gradient, and times one Adam step of
both optimizers with torch's three implementations, interleaved A B C A B C in one process:
  for-loop  - one small kernel sequence per parameter tensor (`foreach=False`)
  foreach   - multi-tensor kernels over the parameter list (`foreach=True`, ganland's default)
  fused     - one fused kernel per dtype/device group (`fused=True`)
and reports the median milliseconds per G+D update next to the median training step of the same
models (forward and backward of a D step and a G step, as `train_speed.py` trains), so the share
of a step the choice can move is visible. Prints one JSON object.

    python benchmarks/optimizer_step.py [--recipe fashion-dcgan] [--repeats 7] [--steps 50]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import build, recipe_config  # noqa: E402  (the harness's own set-up of a recipe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="fashion-dcgan")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians reported)")
    ap.add_argument("--steps", type=int, default=50, help="optimizer steps per measurement")
    args = ap.parse_args()

    cfg = recipe_config(args.recipe, {})
    data, G, D = build(cfg)
    shape = data.shape
    params = {"G": list(G.parameters()), "D": list(D.parameters())}
    for ps in params.values():
        for p in ps:
            p.grad = torch.randn_like(p) * 1e-2

    def make(kind: str):
        kw = {"foreach": False} if kind == "for-loop" else {"foreach": True} if kind == "foreach" else {"fused": True}
        return [torch.optim.Adam(ps, lr=2e-4, betas=(0.5, 0.999), **kw) for ps in params.values()]

    kinds = ["for-loop", "foreach", "fused"]
    opts = {k: make(k) for k in kinds}
    for k in kinds:  # warm-up (allocates the moment buffers)
        for o in opts[k]:
            o.step()
    times = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for k in kinds:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                for o in opts[k]:
                    o.step()
            times[k].append((time.perf_counter() - t0) / args.steps * 1e3)

    step_ms = _train_step_ms(G, D, cfg, shape, data.n_classes, args.repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "benchmark": "optimizer_step", "recipe": args.recipe, "torch": torch.__version__,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "threads": torch.get_num_threads()},
        "parameters": {n: sum(p.numel() for p in ps) for n, ps in params.items()},
        "tensors": {n: len(ps) for n, ps in params.items()},
        "adam_ms_per_update_G_and_D": {k: round(v, 3) for k, v in med.items()},
        "adam_ms_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "train_step_ms_without_optimizer": round(step_ms, 2),
        "share_of_step": {k: round(v / (step_ms + v), 4) for k, v in med.items()},
        "speedup_vs_foreach": {k: round(med["foreach"] / v, 3) for k, v in med.items()},
    }, indent=1))


def _train_step_ms(G, D, cfg, shape, data_classes: int, repeats: int) -> float:
    """Median time of forward + backward of one D step and one G step (no optimizer), batch size
    of the recipe: the rest of a training step the optimizer's share is measured against."""
    n = cfg.train.batch_size
    cond = {"c": torch.randint(0, data_classes, (n,))} if cfg.model.conditional else {}
    x = torch.randn(n, *shape)
    out = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        z = torch.randn(n, cfg.model.z_dim)
        fake = G(z, **cond)
        d = D(x, **cond).mean() - D(fake.detach(), **cond).mean()
        d.backward()
        g = -D(fake, **cond).mean()
        g.backward()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out[1:])


if __name__ == "__main__":
    main()
