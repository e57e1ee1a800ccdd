"""The `ganland` command.

    ganland train RECIPE_OR_YAML [--set key=value ...] [--steps N | --epochs N | --minutes M]
                  [--out DIR] [--dry-run]
    ganland train --resume RUN [--steps N | --epochs N | --minutes M]
    ganland sample RUN --n N --out FILE.npz [--class K] [--seed S]
    ganland recipes | datasets | models | losses
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .errors import GanlandError


def _stop_overrides(args) -> dict:
    out = {}
    for key in ("steps", "epochs", "minutes"):
        v = getattr(args, key)
        if v is not None:
            out[f"train.{key}"] = v
    if out:  # a stopping rule given on the command line replaces the recipe's
        for key in ("steps", "epochs", "minutes"):
            out.setdefault(f"train.{key}", None)
    return out


def cmd_train(args) -> int:
    from .build import check_config
    from .config import load_config, parse_override
    from .training.loop import new_run_dir, resume, train

    if args.no_progress:
        args.set.append("train.progress=false")
    if args.resume:
        if args.recipe or args.dry_run:
            raise GanlandError("--resume RUN continues a run with its own config: give no recipe and no --dry-run")
        overrides = dict(parse_override(s) for s in args.set)
        overrides.update(_stop_overrides(args))
        result = resume(args.resume, overrides)
    else:
        if not args.recipe:
            raise GanlandError("give a recipe name or a YAML file (see `ganland recipes`), or --resume RUN")
        overrides = dict(parse_override(s) for s in args.set)
        overrides.update(_stop_overrides(args))
        cfg = load_config(args.recipe, overrides)
        if args.dry_run:
            check_config(cfg)
            print(cfg.to_yaml(), end="")
            return 0
        run_dir = new_run_dir(cfg, args.out)
        print(f"ganland {__version__}: training {cfg.recipe or args.recipe} into {run_dir}", flush=True)
        result = train(cfg, str(run_dir))
    print(f"done: {result.step} steps, {result.epoch:.2f} epochs in {result.seconds / 60:.1f} min")
    print(f"run folder:  {result.run_dir}")
    print(f"checkpoint:  {result.checkpoint}")
    print(f"samples:     {result.samples}")
    return 0


def cmd_sample(args) -> int:
    from .api import load

    model = load(args.run, device=args.device)
    out = model.sample(args.n, classes=args.class_, seed=args.seed)
    path = Path(args.out)
    if path.suffix != ".npz":
        raise GanlandError(f"--out {path}: write samples to a .npz file")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    desc = ", ".join(f"{k} {v.dtype} {tuple(v.shape)}" for k, v in out.items())
    print(f"wrote {path}: {desc} (step {model.step})")
    return 0


def cmd_recipes(args) -> int:
    from .config import read_recipe, recipe_names

    names = recipe_names()
    width = max(map(len, names))
    for name in names:
        tree, _ = read_recipe(name)
        print(f"{name:<{width}}  {tree.get('description', '')}")
    return 0


def _list(registry, builder_skip=None) -> int:
    from .build import option_defaults

    width = max(map(len, registry.names()))
    for name in registry.names():
        print(f"{name:<{width}}  {registry.help(name)}")
        if builder_skip is not None:
            opts = option_defaults(registry.get(name), builder_skip)
            if opts:
                print(" " * (width + 2) + "options: " + ", ".join(f"{k}={v!r}" for k, v in opts.items()))
    return 0


def cmd_datasets(args) -> int:
    from .data import DATASETS

    return _list(DATASETS, ("split", "root", "download", "image_size"))


def cmd_models(args) -> int:
    from .models import MODELS

    return _list(MODELS, ("shape", "z_dim", "n_classes"))


def cmd_losses(args) -> int:
    from .losses import LOSSES

    return _list(LOSSES)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganland", description="Train, evaluate and look at GANs.")
    p.add_argument("--version", action="version", version=f"ganland {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe or YAML config (or --resume a run)")
    t.add_argument("recipe", nargs="?", help="recipe name (see `ganland recipes`) or path to a YAML file")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set optim.D.lr=1e-4 (repeatable)")
    stop = t.add_mutually_exclusive_group()
    stop.add_argument("--steps", type=int, help="train for N generator steps")
    stop.add_argument("--epochs", type=float, help="train for N passes over the data")
    stop.add_argument("--minutes", type=float, help="train for M minutes of wall-clock time")
    t.add_argument("--out", help="run folder (default runs/<recipe>-<time>)")
    t.add_argument("--resume", metavar="RUN", help="continue RUN from its newest checkpoint")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and check it; train nothing")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained run into an .npz file")
    s.add_argument("run", help="run folder or checkpoint file")
    s.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", required=True, help="output .npz (key `images` uint8 (N, H, W, C), or `samples`)")
    s.add_argument("--class", dest="class_", type=int, help="class to generate (conditional models)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    s.set_defaults(func=cmd_sample)

    for name, fn, text in (("recipes", cmd_recipes, "list the recipes"), ("datasets", cmd_datasets, "list datasets"),
                           ("models", cmd_models, "list model families"), ("losses", cmd_losses, "list losses")):
        sub.add_parser(name, help=text).set_defaults(func=fn)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except GanlandError as e:
        print(f"ganland: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganland: interrupted; the newest checkpoint is intact (continue with --resume RUN)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
