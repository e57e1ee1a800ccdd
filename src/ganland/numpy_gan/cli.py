"""`ganland numpy-sine`: train seed 002's NumPy GAN on sine signals from the command line.

    ganland numpy-sine                                   # the seed: batch 1, SGD 0.01, 50,000 iterations
    ganland numpy-sine --batch-size 64 --iterations 5000 --set optimizer=adam
    ganland numpy-sine --set g_loss=minimax --set dtype=float32 --out runs/sine-np
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from ..config import yaml_load
from ..errors import ConfigError


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the sub-command on the `ganland` parser's sub-parsers."""
    from .train import SineConfig

    names = ", ".join(f.name for f in dataclasses.fields(SineConfig))
    p = sub.add_parser("numpy-sine", help="train seed 002's from-scratch NumPy GAN on sine signals",
                       description="Seed 002's GAN in NumPy with hand-written backprop: G 1-10-10-10, "
                                   "D 10-10-10-1, three steps per iteration. Defaults are the seed's.")
    p.add_argument("--iterations", type=int, default=50_000, help="training iterations (default 50,000, the seed)")
    p.add_argument("--batch-size", type=int, default=1, help="samples per step (default 1, the seed)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"any other setting (repeatable): {names}")
    p.add_argument("--out", help="run folder (default runs/numpy-sine-<time>)")
    p.add_argument("--no-progress", action="store_true", help="print no progress lines")
    p.set_defaults(func=run_cli)
    return p


def _parse_sets(items: list[str]) -> dict:
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optimizer=adam")
        options[key.strip()] = yaml_load(text, f"--set {item!r}")  # ganland's YAML: 1e-1 is a number
    for key in ("iterations", "batch_size", "seed"):
        if key in options:
            raise ConfigError(f"--set {key}=...: use --{key.replace('_', '-')} instead")
    return options


def run_cli(args) -> int:
    from .train import make_config, train_sine

    options = _parse_sets(args.set)
    make_config(iterations=args.iterations, batch_size=args.batch_size, seed=args.seed, **options)  # fail early
    out = args.out or f"runs/numpy-sine-{time.strftime('%Y%m%d-%H%M%S')}"
    every = max(1, args.iterations // 10)  # about ten progress lines
    shown = [0]  # progress lines printed so far

    def progress(rec: dict) -> None:
        if not args.no_progress and rec["step"] // every > shown[0]:
            shown[0] = rec["step"] // every
            print(f"  iteration {rec['step']:>7}: loss_D {rec['loss_D']:.3f}  loss_G {rec['loss_G']:.3f}  "
                  f"D(x) {rec['d_real']:.3f}  D(G(z)) {rec['d_fake']:.3f}  ({rec['seconds']:.1f} s)", flush=True)

    print(f"ganland numpy-sine: {args.iterations} iterations at batch {args.batch_size} into {out}", flush=True)
    result = train_sine(args.iterations, args.batch_size, args.seed, out, on_record=progress, **options)
    m, cfg = result.metrics, result.config
    print(f"done in {result.seconds:.1f} s ({cfg.iterations * cfg.batch_size / max(result.seconds, 1e-9):,.0f} "
          f"samples/s)")
    print(f"sine-like curves: {100 * m['sine_share']:.1f} % of {m['n']} (fit RMS <= {m['rmse_max']}, parameters "
          f"within the data's ranges +-{100 * m['tol']:.0f} %); median fit RMS {m['rmse_median']:.4f}")
    if m["sine_share"] * m["n"] >= 2:
        print(f"sine-like curves' frequency {m['freq_mean']:.3f} +- {m['freq_std']:.3f} (data {m['freq_mean_data']:.3f}"
              f" +- {m['freq_std_data']:.3f}), amplitude {m['mult_mean']:.3f} +- {m['mult_std']:.3f} "
              f"(data {m['mult_mean_data']:.3f} +- {m['mult_std_data']:.3f})")
    print(f"run folder:  {result.run_dir}")
    print(f"curves:      {result.files['curves']}")
    print(f"losses:      {result.files['loss']}")
    print("next:")
    print(f"  ganland eval {result.run_dir}      # score it again (like any sine run: compare takes both)")
    print(f"  ganland sample {result.run_dir} --n 1000 --out curves.npz")
    print(f"  ganland numpy-sine --iterations {2 * cfg.iterations} --batch-size {cfg.batch_size} --seed {cfg.seed} "
          f"--out {result.run_dir}-longer   # a numpy-sine run trains in one go: longer is a new run")
    return 0
