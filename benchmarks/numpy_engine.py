"""Speed of the NumPy engine (`ganland.numpy_gan`) against seed 002's way of writing the loop.

Three measurements, taken alternately (A B C A B C ..., --repeats rounds), medians reported:
  engine_b1   the engine's seed-002 run: `fit` at batch 1 (SGD 0.01, clipping as the seed) for
              --iterations iterations;
  seed_loop   the same training written as the seed writes it: one sample at a time, a Generator
              and a Discriminator object with w1..w3 / b1..b3 attributes, per-layer forward and
              backward code with the update inside backward, np.linalg.norm clipping,
              np.maximum/np.minimum weight clipping, samples drawn by get_samples() one point at a
              time; but with correct gradients (dReLU is the step, dTanh/dSigmoid from the
              outputs, D descends its loss, G receives the gradient of -log D(G(z)));
  engine_b64  the engine at batch 64 for --iterations64 iterations (samples per second).
Every timing covers the training loop only (data drawing included, evaluation excluded). The
sine_share of each run's generator (1,000 curves, `sine_metrics`) is reported beside its time.
Then, for quality (--quality-seeds, default 10): the engine's seed-002 run for seeds 0..N-1, and
the share of sine-like curves each ends with.

    python benchmarks/numpy_engine.py [--iterations 50000] [--iterations64 5000] [--repeats 2] [--quality-seeds 10]
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ganland.metrics.signals import sine_metrics  # noqa: E402
from ganland.numpy_gan import train_sine  # noqa: E402

# ---------------------------------------------------------------------------------------------
# The reference: seed 002's structure, correct gradients

Z_DIM, G_HIDDEN, X_DIM, D_HIDDEN = 1, 10, 10, 10
STEP_G, STEP_D = 0.01, 0.01
GRADIENT_CLIP, WEIGHT_CLIP = 0.2, 0.25


def get_samples():
    x0 = np.random.uniform(0, 1)
    freq = np.random.uniform(1.2, 1.5)
    mult = np.random.uniform(0.5, 0.8)
    return np.array([mult * np.sin(x0 + freq * i) for i in range(X_DIM)])


def relu(x):
    return np.maximum(x, 0.0)


def d_relu(x):  # the step function (the seed returned relu(x))
    return np.where(x > 0, 1.0, 0.0)


def leaky_relu(x, k=0.2):
    return np.where(x >= 0, x, x * k)


def d_leaky_relu(x, k=0.2):
    return np.where(x >= 0, 1.0, k)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def init(n_in, n_out):
    scale = np.sqrt(2.0 / (n_in + n_out))
    return np.random.uniform(-scale, scale, (n_in, n_out))


def update(w, d_w, step, clip_grad):
    if clip_grad and np.linalg.norm(d_w) > GRADIENT_CLIP:
        d_w = GRADIENT_CLIP / np.linalg.norm(d_w) * d_w
    w = w - step * d_w
    return np.maximum(-WEIGHT_CLIP, np.minimum(WEIGHT_CLIP, w))


class LossFunc:
    def forward(self, p, label):
        self.p = np.clip(p, 1e-7, 1 - 1e-7)
        self.label = label
        return -(label * np.log(self.p) + (1 - label) * np.log(1 - self.p))

    def backward(self):  # d loss / d p
        return (1 - self.label) / (1 - self.p) - self.label / self.p


class Generator:
    def __init__(self):
        self.w1, self.b1 = init(Z_DIM, G_HIDDEN), init(1, G_HIDDEN)
        self.w2, self.b2 = init(G_HIDDEN, G_HIDDEN), init(1, G_HIDDEN)
        self.w3, self.b3 = init(G_HIDDEN, X_DIM), init(1, X_DIM)

    def forward(self, z):
        self.z = z.reshape(1, Z_DIM)
        self.a1 = np.matmul(self.z, self.w1) + self.b1
        self.x1 = relu(self.a1)
        self.a2 = np.matmul(self.x1, self.w2) + self.b2
        self.x2 = relu(self.a2)
        self.a3 = np.matmul(self.x2, self.w3) + self.b3
        self.x = np.tanh(self.a3)
        return self.x

    def backward(self, d_x):
        delta = d_x * (1.0 - self.x ** 2)
        d_w3, d_b3 = np.matmul(self.x2.T, delta), delta.copy()
        delta = np.matmul(delta, self.w3.T)
        self.w3 = update(self.w3, d_w3, STEP_G, True)
        self.b3 = update(self.b3, d_b3, STEP_G, False)
        delta = delta * d_relu(self.a2)
        d_w2, d_b2 = np.matmul(self.x1.T, delta), delta.copy()
        delta = np.matmul(delta, self.w2.T)
        self.w2 = update(self.w2, d_w2, STEP_G, True)
        self.b2 = update(self.b2, d_b2, STEP_G, False)
        delta = delta * d_relu(self.a1)
        d_w1, d_b1 = np.matmul(self.z.T, delta), delta.copy()
        self.w1 = update(self.w1, d_w1, STEP_G, True)
        self.b1 = update(self.b1, d_b1, STEP_G, False)


class Discriminator:
    def __init__(self):
        self.w1, self.b1 = init(X_DIM, D_HIDDEN), init(1, D_HIDDEN)
        self.w2, self.b2 = init(D_HIDDEN, D_HIDDEN), init(1, D_HIDDEN)
        self.w3, self.b3 = init(D_HIDDEN, 1), init(1, 1)

    def forward(self, x):
        self.x = x.reshape(1, X_DIM)
        self.a1 = np.matmul(self.x, self.w1) + self.b1
        self.y1 = leaky_relu(self.a1)
        self.a2 = np.matmul(self.y1, self.w2) + self.b2
        self.y2 = leaky_relu(self.a2)
        self.a3 = np.matmul(self.y2, self.w3) + self.b3
        self.y = sigmoid(self.a3)
        return self.y

    def backward(self, d_y, apply_grads=True):
        delta = d_y * self.y * (1.0 - self.y)
        d_w3, d_b3 = np.matmul(self.y2.T, delta), delta.copy()
        delta = np.matmul(delta, self.w3.T)
        if apply_grads:  # descent: D minimises its loss
            self.w3 = update(self.w3, d_w3, STEP_D, True)
            self.b3 = update(self.b3, d_b3, STEP_D, False)
        delta = delta * d_leaky_relu(self.a2)
        d_w2, d_b2 = np.matmul(self.y1.T, delta), delta.copy()
        delta = np.matmul(delta, self.w2.T)
        if apply_grads:
            self.w2 = update(self.w2, d_w2, STEP_D, True)
            self.b2 = update(self.b2, d_b2, STEP_D, False)
        delta = delta * d_leaky_relu(self.a1)
        d_w1, d_b1 = np.matmul(self.x.T, delta), delta.copy()
        delta = np.matmul(delta, self.w1.T)
        if apply_grads:
            self.w1 = update(self.w1, d_w1, STEP_D, True)
            self.b1 = update(self.b1, d_b1, STEP_D, False)
        return delta


def seed_loop(iterations: int, seed: int) -> dict:
    """Seed 002's training loop with correct gradients -> {"seconds", "sine_share"}."""
    np.random.seed(seed)
    G, D, criterion = Generator(), Discriminator(), LossFunc()
    start = time.perf_counter()
    for _ in range(iterations):
        x_real = get_samples()
        y_real = D.forward(x_real)
        criterion.forward(y_real, 1)
        D.backward(criterion.backward())

        z = np.random.randn(Z_DIM)
        x_fake = G.forward(z)
        y_fake = D.forward(x_fake)
        criterion.forward(y_fake, 0)
        D.backward(criterion.backward())

        y_fake_r = D.forward(x_fake)
        criterion.forward(y_fake_r, 1)  # non-saturating: -log D(G(z))
        G.backward(D.backward(criterion.backward(), apply_grads=False))
    seconds = time.perf_counter() - start
    z = np.random.default_rng(seed).standard_normal((1000, 1))
    curves = np.concatenate([G.forward(row).copy() for row in z])  # (1000, X_DIM)
    return {"seconds": seconds, "sine_share": sine_metrics(curves)["sine_share"]}


# ---------------------------------------------------------------------------------------------
# The measurements


def engine(iterations: int, batch: int, seed: int) -> dict:
    r = train_sine(iterations=iterations, batch_size=batch, seed=seed, log_every=max(100, iterations // 10))
    return {"seconds": r.seconds, "sine_share": r.metrics["sine_share"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=50_000, help="iterations of the batch-1 runs (seed: 50,000)")
    p.add_argument("--iterations64", type=int, default=5_000, help="iterations of the batch-64 engine run")
    p.add_argument("--repeats", type=int, default=2, help="rounds of A B C (at least 2 for a median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quality-seeds", type=int, default=10, help="seeds of the quality sweep (0 to skip)")
    args = p.parse_args(argv)

    runs = {"engine_b1": [], "seed_loop": [], "engine_b64": []}
    jobs = {
        "engine_b1": lambda: engine(args.iterations, 1, args.seed),
        "seed_loop": lambda: seed_loop(args.iterations, args.seed),
        "engine_b64": lambda: engine(args.iterations64, 64, args.seed),
    }
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        for name, job in jobs.items():
            runs[name].append(job())
            print(f"{name}: {runs[name][-1]}", file=sys.stderr, flush=True)

    def med(name, key):
        return statistics.median(r[key] for r in runs[name])

    b1, ref, b64 = med("engine_b1", "seconds"), med("seed_loop", "seconds"), med("engine_b64", "seconds")
    out = {
        "benchmark": "numpy_engine",
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "processor": platform.machine()},
        "iterations": args.iterations, "repeats": args.repeats, "order": "A B C per round (alternating)",
        "engine_b1": {"seconds_median": round(b1, 3), "seconds_all": [round(r["seconds"], 3) for r in runs["engine_b1"]],
                      "iterations_per_second": round(args.iterations / b1, 1),
                      "sine_share": [r["sine_share"] for r in runs["engine_b1"]]},
        "seed_loop": {"seconds_median": round(ref, 3), "seconds_all": [round(r["seconds"], 3) for r in runs["seed_loop"]],
                      "iterations_per_second": round(args.iterations / ref, 1),
                      "sine_share": [r["sine_share"] for r in runs["seed_loop"]]},
        "speedup_engine_b1_vs_seed_loop": round(ref / b1, 3),
        "engine_b64": {"iterations": args.iterations64, "seconds_median": round(b64, 3),
                       "seconds_all": [round(r["seconds"], 3) for r in runs["engine_b64"]],
                       "samples_per_second": round(args.iterations64 * 64 / b64, 1),
                       "sine_share": [r["sine_share"] for r in runs["engine_b64"]]},
        "samples_per_second_b64_vs_b1": round((args.iterations64 * 64 / b64) / (args.iterations / b1), 2),
    }
    if args.quality_seeds:
        shares = [engine(args.iterations, 1, seed)["sine_share"] for seed in range(args.quality_seeds)]
        out["quality_engine_b1"] = {
            "seeds": list(range(args.quality_seeds)), "sine_share": shares,
            "sine_share_median": statistics.median(shares),
            "seeds_with_most_curves_sine_like": sum(s > 0.5 for s in shares),
        }
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
