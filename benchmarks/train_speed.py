"""Training throughput: ganland's trainer against the textbook PyTorch GAN loop (issue 5).

For each recipe's model, batch size and loss, two loops train in turn, A B A B (each
measurement in a fresh subprocess, so peak memory is its own):
  baseline  the loop a user would write, as pytorch/examples' DCGAN: a `Dataset` that converts
            one uint8 image at a time to a normalised float tensor (ToTensor + Normalize), a
            `DataLoader` (shuffle, drop_last, num_workers=0: this machine has 2 cores), fp32,
            eager, `.item()` logging every step; the fake batch of the D step is reused for
            the G step, as in the example. Toy data: one fresh batch drawn per step.
  ganland   `ganland.training.loop.Trainer` with the recipe's settings and ganland's defaults
            (`--set key=value` changes them, e.g. to measure one lever on its own).
Both count images shown to D per second of training (model construction and data loading
excluded, everything else included). Also measured in the same run: the machine's fp32 and
bf16 matrix-product GFLOP/s and each model's FLOPs per trained image (forward and backward of
D on real and fake, G forward and backward, counted by torch's FlopCounterMode on the baseline
step), so the report shows the share of the machine's limit each loop reaches; and sampling
throughput of the trained generator.

    python benchmarks/train_speed.py [--recipes fashion-dcgan,mnist-dcgan] [--seconds 20] [--repeats 2]
                                     [--set speed.amp=fp32 ...]
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST_10K = ROOT.parent / "shared" / "data" / "mnist-10k"
DEFAULT_RECIPES = "fashion-dcgan,mnist-dcgan,fashion-cgan,gaussian-1d,ring"


# ---------------------------------------------------------------------------------------------
# Pieces shared by the workers


def recipe_config(recipe: str, overrides: dict):
    from ganland.config import load_config

    extra = {"train.progress": False, "train.sample_every": 0, "train.checkpoint_every": 0,
             "train.checkpoint_minutes": 0, "train.heldout_batches": 0, "eval.every": 0,
             "train.steps": None, "train.epochs": None}
    if recipe == "mnist-dcgan" and MNIST_10K.is_dir():
        extra["data.root"] = str(MNIST_10K)
    return load_config(recipe, {**extra, **overrides})


def build(cfg):
    from ganland.build import build_dataset, build_models

    torch_seed(cfg.train.seed)
    data = build_dataset(cfg, "train")
    G, D = build_models(cfg, data.shape, data.n_classes)
    return data, G, D


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def flops_per_image(cfg) -> float:
    """FLOPs of one baseline training iteration divided by the batch size."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    data, G, D = build(cfg)
    step = BaselineStep(cfg, data, G, D)
    batch = step.first_batch()
    with FlopCounterMode(display=False) as counter:
        step(*batch)
    return counter.get_total_flops() / cfg.train.batch_size


def matmul_gflops(dtype_name: str, n: int = 2048, seconds: float = 2.0) -> float:
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    mm = torch.nn.functional.linear  # a @ b.T: the fastest bf16 path on CPUs without bf16 units
    for _ in range(3):
        mm(a, b)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mm(a, b)
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


# ---------------------------------------------------------------------------------------------
# The textbook loop


class TextbookImages:
    """A map-style dataset converting one uint8 image at a time, like ToTensor + Normalize(0.5, 0.5)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = self.x[i].float().div(255.0)  # ToTensor
        img = img.sub(0.5).div(0.5)  # Normalize((0.5,), (0.5,))
        return img, (self.y[i] if self.y is not None else 0)


class BaselineStep:
    """One iteration of the textbook loop: D on real, D on fake (detached), G on the same fake."""

    def __init__(self, cfg, data, G, D):
        import torch
        from ganland.build import build_loss

        self.cfg, self.data, self.G, self.D = cfg, data, G, D
        self.loss = build_loss(cfg)
        self.conditional = cfg.model.conditional
        o = cfg.optim
        betas_G, betas_D = tuple(o.G.betas), tuple(o.D.betas)
        self.opt_G = torch.optim.Adam(G.parameters(), lr=o.G.lr, betas=betas_G, weight_decay=o.G.weight_decay)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=o.D.lr, betas=betas_D, weight_decay=o.D.weight_decay)
        self.n_classes = data.n_classes

    def first_batch(self):
        import torch

        bs = self.cfg.train.batch_size
        if self.data.finite:
            ds = TextbookImages(self.data.x, self.data.y)
            items = [ds[i] for i in range(bs)]
            return torch.stack([a for a, _ in items]), torch.as_tensor([b for _, b in items])
        return self.data.draw(bs, torch.Generator().manual_seed(0)), None

    def __call__(self, real, labels):
        import torch

        cfg, G, D = self.cfg, self.G, self.D
        b = real.shape[0]
        c_real = labels if self.conditional else None
        c_fake = torch.randint(self.n_classes, (b,)) if self.conditional else None
        D.zero_grad()
        err_real = self.loss.d_real(D(real, c_real))
        err_real.backward()
        if cfg.model.z_prior == "uniform":
            noise = torch.rand(b, cfg.model.z_dim) * 2 - 1
        else:
            noise = torch.randn(b, cfg.model.z_dim)
        fake = G(noise, c_fake)
        out_fake = D(fake.detach(), c_fake)
        err_fake = self.loss.d_fake(out_fake)
        err_fake.backward()
        self.opt_D.step()
        G.zero_grad()
        out = D(fake, c_fake)
        err_G = self.loss.g(out)
        err_G.backward()
        self.opt_G.step()
        return err_real + err_fake, err_G, out_fake


def run_baseline(cfg, seconds: float) -> dict:
    import torch
    from torch.utils.data import DataLoader

    data, G, D = build(cfg)
    step = BaselineStep(cfg, data, G, D)
    bs = cfg.train.batch_size
    images, iters, log = 0, 0, []
    t0 = time.perf_counter()
    if data.finite:
        loader = DataLoader(TextbookImages(data.x, data.y), batch_size=bs, shuffle=True, drop_last=True,
                            num_workers=0)
        while time.perf_counter() - t0 < seconds:
            for real, labels in loader:
                err_D, err_G, out_fake = step(real, labels)
                log.append((err_D.item(), err_G.item(), out_fake.mean().item()))  # the example's print
                images += real.shape[0]
                iters += 1
                if time.perf_counter() - t0 >= seconds:
                    break
    else:
        gen = torch.Generator().manual_seed(0)
        while time.perf_counter() - t0 < seconds:
            real = data.draw(bs, gen)
            err_D, err_G, out_fake = step(real, None)
            log.append((err_D.item(), err_G.item(), out_fake.mean().item()))
            images += bs
            iters += 1
    elapsed = time.perf_counter() - t0
    return {"images_per_s": images / elapsed, "iterations": iters, "seconds": elapsed,
            "final_loss_D": log[-1][0] if log else None}


def run_ganland(cfg, seconds: float) -> dict:
    from ganland.training.loop import Trainer

    cfg.train.minutes = seconds / 60.0
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")  # model and data set-up: not timed
        t0 = time.perf_counter()
        res = trainer.fit()  # includes the final sample picture and checkpoint
        elapsed = time.perf_counter() - t0
        out = {"images_per_s": trainer.images / elapsed, "iterations": res.step, "seconds": elapsed,
               "final_loss_D": res.last_stats.get("loss_D"), "peak_rss_mb": peak_rss_mb()}  # before sampling
        # Sampling throughput of the trained generator (batches of 1,000, no gradients).
        from ganland.api import load

        model = load(res.run_dir)
        n = 10_000 if trainer.train_set.is_image else 100_000
        t1 = time.perf_counter()
        model.sample(n, seed=0)
        out["sample_per_s"] = n / (time.perf_counter() - t1)
    return out


def worker(spec: dict) -> dict:
    import torch

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    cfg = recipe_config(spec["recipe"], spec["overrides"])
    if spec["what"] == "baseline":
        out = run_baseline(cfg, spec["seconds"])
    elif spec["what"] == "ganland":
        out = run_ganland(cfg, spec["seconds"])
    elif spec["what"] == "flops":
        out = {"flops_per_image": flops_per_image(cfg)}
    elif spec["what"] == "machine":
        out = {"fp32_gflops": matmul_gflops("fp32"), "bf16_gflops": matmul_gflops("bf16")}
    else:
        raise ValueError(spec["what"])
    out.setdefault("peak_rss_mb", peak_rss_mb())
    return out


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_subprocess(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_sets(items) -> dict:
    from ganland.config import parse_override

    return dict(parse_override(s) for s in items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default=DEFAULT_RECIPES, help="comma-separated recipes")
    ap.add_argument("--seconds", type=float, default=20.0, help="training seconds per measurement")
    ap.add_argument("--repeats", type=int, default=2, help="A B pairs per recipe (medians reported)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ganland setting to change")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    overrides = parse_sets(args.set)
    machine = in_subprocess({"what": "machine", "recipe": "gaussian-1d", "overrides": {}})
    report = {"benchmark": "train_speed", "seconds_per_measurement": args.seconds, "repeats": args.repeats,
              "ganland_overrides": overrides,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "fp32_matmul_gflops": round(machine["fp32_gflops"], 1),
                          "bf16_matmul_gflops": round(machine["bf16_gflops"], 1)},
              "recipes": {}}
    for recipe in args.recipes.split(","):
        try:
            flops = in_subprocess({"what": "flops", "recipe": recipe, "overrides": {}})["flops_per_image"]
        except RuntimeError as e:  # e.g. no MNIST files on this machine: report it, go on
            report["recipes"][recipe] = {"error": str(e).strip().splitlines()[-1][:500]}
            print(f"{recipe}: skipped ({report['recipes'][recipe]['error']})", file=sys.stderr, flush=True)
            continue
        runs = {"baseline": [], "ganland": []}
        for _ in range(args.repeats):
            for what in ("baseline", "ganland"):  # A B A B
                runs[what].append(in_subprocess({"what": what, "recipe": recipe, "seconds": args.seconds,
                                                 "overrides": overrides if what == "ganland" else {}}))
        entry = {"flops_per_image": flops}
        for what, rs in runs.items():
            ips = statistics.median(r["images_per_s"] for r in rs)
            entry[what] = {
                "images_per_s": round(ips, 1),
                "images_per_s_all": [round(r["images_per_s"], 1) for r in rs],
                "gflops": round(ips * flops / 1e9, 2),
                "share_of_fp32_limit": round(ips * flops / 1e9 / machine["fp32_gflops"], 3),
                "share_of_bf16_limit": round(ips * flops / 1e9 / machine["bf16_gflops"], 3),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rs), 1),
            }
            if what == "ganland":
                entry[what]["sample_per_s"] = round(statistics.median(r["sample_per_s"] for r in rs), 1)
        entry["ratio_ganland_over_baseline"] = round(entry["ganland"]["images_per_s"] /
                                                     entry["baseline"]["images_per_s"], 3)
        report["recipes"][recipe] = entry
        print(f"{recipe}: ratio {entry['ratio_ganland_over_baseline']}", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
