"""The `ganland` command.

    ganland train RECIPE_OR_YAML [--set key=value ...] [--steps N | --epochs N | --minutes M]
                  [--out DIR] [--dry-run]
    ganland train --resume RUN [--steps N | --epochs N | --minutes M]
    ganland sample RUN --n N --out FILE.npz|FILE.png [--class K|NAME] [--seed S] [--truncation T]
                   [--interpolate STEPS]
    ganland translate RUN --input FILE_OR_FOLDER --out DIR [--mask FILE_OR_FOLDER] [--degrade] [--seed S]
    ganland export RUN --out FILE.safetensors
    ganland tensorboard RUN
    ganland report RUN [--out FILE.html] [--no-floor]
    ganland eval RUN [RUN ...] | --real --dataset NAME | --samples FILE.npz --dataset NAME
    ganland compare RUN_OR_JSONL [...]
    ganland numpy-sine [--iterations N] [--batch-size B] [--set key=value ...] [--out DIR]
    ganland recipes | datasets | models | losses
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .version import __version__
from .errors import GanlandError, Interrupted


def cmd_train(args) -> int:
    from .build import check_config
    from .config import load_config, parse_override, stop_overrides
    from .training.distributed import finish
    from .training.interrupt import launcher
    from .training.runs import new_trainer, resume_trainer

    if args.no_progress:
        args.set.append("train.progress=false")
    overrides = {**dict(parse_override(s) for s in args.set), **stop_overrides(args.steps, args.epochs, args.minutes)}
    if args.resume:
        if args.recipe or args.dry_run or args.out:
            raise GanlandError("--resume RUN continues RUN in its own folder with its own config: give no recipe, "
                               "--out or --dry-run (to branch off, copy the run folder and resume the copy)")
        trainer = resume_trainer(args.resume, overrides)
        reached = trainer.reached()
        if reached:
            if trainer.world.main:
                print(f"{args.resume} is finished: it has trained {reached} ({trainer.step} steps, "
                      f"{trainer.epochs_done:.2f} epochs, {trainer.clock.total() / 60:.1f} min), so there is nothing "
                      f"to resume. To train on, give a larger total, e.g.\n  {_extend_command(trainer)}")
            finish(trainer.world)
            return 0
        start = f", from step {trainer.step} ({Path(trainer.resumed_from).name})"
    else:
        if not args.recipe:
            raise GanlandError("give a recipe name or a YAML file (see `ganland recipes`), or --resume RUN")
        cfg = load_config(args.recipe, overrides)
        if args.dry_run:
            check_config(cfg)
            print(cfg.to_yaml(), end="")
            return 0
        trainer, start = new_trainer(cfg, args.out), ""
    cfg, world = trainer.cfg, trainer.world
    processes = f"{world.size} processes, " if world.active else ""
    if world.main:
        print(f"ganland {__version__}: training {cfg.recipe or cfg.data.name} into {trainer.run_dir}{start} "
              f"({processes}{trainer.device.type}, {_rules_text(cfg)})", flush=True)
    result = trainer.fit()
    if world.main:
        print(f"done: {result.step} steps, {result.epoch:.2f} epochs in {result.seconds / 60:.1f} min")
        _print_run_end(result, launcher(world))
    finish(world)
    return 0


def _rules_text(cfg) -> str:
    from .config import stop_rules

    return " or ".join(f"{v:g} {k.split('.')[-1]}" if isinstance(v, float) else f"{v} {k.split('.')[-1]}"
                       for k, v in stop_rules(cfg).items())


def _extend_command(trainer) -> str:
    """`ganland train --resume RUN --<rule> <twice as far>` for a finished run."""
    from .config import stop_rules
    from .training.interrupt import launcher

    key, value = next(iter(stop_rules(trainer.cfg).items()))
    more = 2 * value if isinstance(value, int) else format(2 * value, "g")
    return f"{launcher(trainer.world)} train --resume {trainer.run_dir} --{key.split('.')[-1]} {more}"


def _print_run_end(result, launch: str = "ganland") -> None:
    """Where everything is, every picture written, and what to do next."""
    run = result.run_dir
    samples = run / "samples"
    steps = sorted(samples.glob("step_*.png")) if samples.is_dir() else []
    print(f"run folder:  {run}")
    print(f"checkpoint:  {result.checkpoint}")
    shows = "fixed test images: input, output, truth" if result.paired else "the newest fixed-noise samples"
    print(f"samples:     {result.samples} ({shows})")
    for name, what in (("training.png", "losses, D(x) and D(G(z)), gradient norms"),
                       ("quality.png", "in-training scores against the step")):
        if (samples / name).is_file():
            print(f"             {samples / name} ({what})")
    if len(steps) > 1:
        print(f"             {len(steps)} pictures over time: {steps[0].name} ... {steps[-1].name}")
    print("next:")
    scores = "PSNR, SSIM, FID" if result.paired else "FID, KID, precision/recall" if result.is_image else "its metrics"
    print(f"  {launch} eval {run}        # score it: {scores}")
    if result.paired:
        print(f"  ganland translate {run} --input IMAGES --out restored/   # apply it to your images")
    else:
        print(f"  ganland sample {run} --out samples.{'png' if result.is_image else 'npz'}")
    print(f"  ganland report {run}      # one HTML page: curves, samples over time, scores")
    print(f"  {launch} train --resume {run} --steps {2 * result.step}        # train on")


def cmd_sample(args) -> int:
    from .generator import load

    path = Path(args.out)
    if path.suffix not in (".npz", ".png"):
        raise GanlandError(f"--out {path}: write samples to a .npz file (arrays) or, for images, a .png grid")
    model = load(args.run, device=args.device)
    if path.suffix == ".png" and not model.is_image:
        raise GanlandError(f"--out {path}: this model makes vectors, not images; write them to a .npz file")
    if args.interpolate:  # --n walks of --interpolate steps each
        out = model.interpolate(args.interpolate, rows=args.n, seed=args.seed, classes=args.class_,
                                truncation=args.truncation)
    else:
        out = model.sample(args.n, classes=args.class_, seed=args.seed, truncation=args.truncation)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        _sample_grid(path, model, out, args)
    else:
        np.savez_compressed(path, **out)
    desc = ", ".join(f"{k} {v.dtype} {tuple(v.shape)}" for k, v in out.items())
    print(f"wrote {path}: {desc} (step {model.step})")
    return 0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
COMPARISON_SHOWN = 10  # translate: the images drawn in comparison.png


def _image_files(path: Path, what: str) -> list[Path]:
    """One image file, or the image files of a folder (sorted); a ConfigError when there are none."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if files:
            return files
        raise GanlandError(f"{what} {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    raise GanlandError(f"{what} {path} is neither an image file nor a folder")


def _read_image(path: Path, mode: str) -> np.ndarray:
    """An image file as uint8 (H, W, C) in PIL mode "L" or "RGB"."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert(mode))
    except (OSError, UnidentifiedImageError) as e:
        raise GanlandError(f"cannot read {path} as an image ({e})") from None
    return a[..., None] if a.ndim == 2 else a


def cmd_translate(args) -> int:
    """Apply an image-to-image model to a user's images: NAME.png in --out for each input, and
    comparison.png (inputs over outputs) when they share one size."""
    from PIL import Image

    from .generator import load
    from .viz import save_grid

    model = load(args.run, device=args.device)
    if not getattr(model, "paired", False):
        raise GanlandError(f"{args.run} makes images from noise; translate applies image-to-image models (trained with "
                           "data.degrade, e.g. the fashion-sr4 and fashion-inpaint recipes). Draw samples with "
                           f"`ganland sample {args.run} --out samples.png`")
    files = _image_files(Path(args.input), "--input")
    out_dir = Path(args.out)
    if out_dir.resolve() in {f.parent.resolve() for f in files}:
        raise GanlandError(f"--out {out_dir} is where the inputs are: the outputs would overwrite them; give another "
                           "folder")
    stems = [f.stem for f in files]
    twice = sorted({s for s in stems if stems.count(s) > 1} | ({"comparison"} & set(stems)))
    if twice:
        raise GanlandError(f"inputs named {twice[0]!r} ({', '.join(f.name for f in files if f.stem == twice[0])}) would "
                           "write the same output file (NAME.png, and comparison.png for the overview): rename them")
    masks = None
    if args.mask:
        if args.degrade:
            raise GanlandError("--mask gives the missing pixels and --degrade cuts random ones: use one of them")
        mask_path = Path(args.mask)
        mask_files = ([mask_path] if len(files) == 1 and mask_path.is_file()
                      else [mask_path / f.name for f in files] if mask_path.is_dir() else None)
        if mask_files is None:
            raise GanlandError(f"--mask {mask_path}: give one mask file for one input image, or a folder holding a mask "
                               "of the same name for each input image")
        missing = [m for m in mask_files if not m.is_file()]
        if missing:
            raise GanlandError(f"--mask: no mask {missing[0]} for input {files[mask_files.index(missing[0])]}")
        masks = [_read_image(m, "L")[..., 0] for m in mask_files]
    mode = "L" if model.shape[0] == 1 else "RGB"
    out_dir.mkdir(parents=True, exist_ok=True)
    shown_in, shown_out = [], []
    for i, f in enumerate(files):
        image = _read_image(f, mode)
        mask = masks[i][None] if masks is not None else None
        try:
            inputs = model.inputs(image[None], mask, degrade=args.degrade, seed=args.seed + i)
        except GanlandError as e:
            raise GanlandError(f"{f}: {e}") from None
        restored = model.translate(inputs)[0]  # (H, W, C)
        Image.fromarray(restored[..., 0] if restored.shape[-1] == 1 else restored).save(out_dir / f"{f.stem}.png")
        if len(shown_out) < COMPARISON_SHOWN:
            shown_in.append(to_uint8_hwc(inputs[0, : model.shape[0]]))
            shown_out.append(restored)
    wrote = f"wrote {len(files)} restored image{'s' if len(files) > 1 else ''} to {out_dir}"
    if len({a.shape for a in shown_out}) == 1:
        save_grid(out_dir / "comparison.png", np.stack(shown_in + shown_out), ncols=len(shown_out),
                  title=f"{Path(args.run).name} (step {model.step}): inputs, outputs")
        wrote += f" (and comparison.png: the first {len(shown_out)} inputs over their outputs)"
    what = model.degradation.spec() + (", applied here with --degrade" if args.degrade else "")
    print(f"{wrote}; model: {what}")
    return 0


def to_uint8_hwc(x) -> np.ndarray:
    """One model-range image (C, H, W) tensor as uint8 (H, W, C)."""
    from .data import to_uint8

    return to_uint8(x[None])[0].permute(1, 2, 0).numpy()


def cmd_tensorboard(args) -> int:
    from .training.tensorboard import rebuild

    folder = rebuild(Path(args.run))
    print(f"wrote TensorBoard events to {folder}; view them with\n  tensorboard --logdir {folder}")
    return 0


def _sample_grid(path: Path, model, out: dict, args) -> None:
    """A picture of sampled images: labelled with the run, step and classes. Every class in turn
    gets a column each (as the training grids); walks are one row each, their classes named."""
    from .viz import save_grid

    names = list(model.class_names or [])
    name = lambda k: names[k] if k < len(names) else str(k)  # noqa: E731
    title = f"{args.run}: step {model.step}" + (f", truncation {args.truncation:g}" if args.truncation else "")
    labels = out.get("labels")
    ncols, columns = args.interpolate or None, None
    if labels is not None and args.interpolate:
        title += "; rows: " + ", ".join(name(int(k)) for k in labels[::args.interpolate])
    elif labels is not None and args.class_ is None:
        ncols = min(model.n_classes, 10)  # labels run through the classes: one column each
        columns = [name(k) for k in range(ncols)] if model.n_classes <= 10 else None
    elif labels is not None:
        title += f", class {name(int(labels[0]))}"
    save_grid(path, out["images"], ncols=ncols, title=title, column_labels=columns)


def cmd_export(args) -> int:
    from .generator import export, load

    path = export(args.run, args.out, ema=not args.no_ema)
    model = load(path)
    use = (f"apply it with `ganland translate {path} --input IMAGES --out DIR`" if model.paired else
           f"sample it with `ganland sample {path} --out samples.{'png' if model.is_image else 'npz'}`")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): the generator and its config; load it with "
          f"ganland.load({str(path)!r}) or {use}")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import append_score, evaluate_real, evaluate_run, evaluate_samples, samples_target
    from .config import load_config

    opts = {"seed": args.seed, "feature_net": args.feature_net, "weights": args.inception_weights}
    scores = []
    if args.real or args.samples:
        opts["seed"] = args.seed if args.seed is not None else 0
        if args.runs:
            raise GanlandError("give either runs, or --real / --samples with --dataset, not both")
        if not args.dataset:
            raise GanlandError("--real and --samples need --dataset NAME (e.g. --dataset fashion-mnist)")
        if args.real:
            cfg = load_config(None, {"data.name": args.dataset, "data.root": args.root,
                                     "data.image_size": args.image_size})
            scores.append(evaluate_real(cfg, args.n, **opts))
        else:
            data = _read_samples(args.samples)
            target = samples_target(args.dataset, args.root, args.image_size)
            key = "images" if "images" in data else "samples"
            samples = data[key][: args.n] if args.n else data[key]
            labels = data["labels"][: len(samples)] if "labels" in data else None
            scores.append(evaluate_samples(samples, target, opts["seed"], labels, True, args.feature_net,
                                           args.inception_weights, source=f"samples {args.samples}"))
        if args.out:
            for sc in scores:
                append_score(Path(args.out), sc)
    else:
        from .training.distributed import finish, start

        if not args.runs:
            raise GanlandError("give a run folder to evaluate (or --real / --samples with --dataset)")
        world = start(args.device, 300.0)  # under torchrun the processes share the work
        unused = [flag for flag, value in (("--dataset", args.dataset), ("--root", args.root),
                                           ("--image-size", args.image_size), ("--out", args.out)) if value]
        if unused:
            raise GanlandError(f"{', '.join(unused)}: only for --real / --samples; a run is scored against its own "
                               "dataset, and its scores go to the run's metrics.jsonl")
        for run in args.runs:
            scores.append(evaluate_run(run, args.n, record=not args.no_record, device=args.device, world=world, **opts))
        finish(world)
        if not world.main:
            return 0
    for sc in scores:
        p = sc.protocol
        print(f"{sc.source}  ({sc.seconds:.1f} s)")
        print(f"  protocol: {p.evaluator} on {p.dataset}, {p.n_generated} generated vs {p.n_real or 'closed-form'} "
              f"real ({p.reference}), seed {p.seed}"
              + (f", {p.feature_net} {p.feature_net_sha256[:12]}" if p.feature_net else ""))
        print(sc.summary())
    small = sorted({sc.protocol.n_generated for sc in scores if "fid" in sc.metrics and sc.protocol.n_generated < FID_N})
    if small:
        print(f"ganland: note: FID from {', '.join(map(str, small))} samples is biased upwards, and the bias depends on "
              f"n and on the model (Chong & Forsyth 2020): compare it only with scores of the same n; published "
              f"numbers use {FID_N:,} (--n {FID_N})", file=sys.stderr)
    if len(scores) > 1:
        from .evaluation import compare

        compare(scores)
    return 0


FID_N = 10_000  # generated samples of the usual FID protocol; fewer get a note


def _read_samples(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise GanlandError(f"samples file {p} not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise GanlandError(f"{p} is not a readable .npz file of arrays ({e})") from None
    if "images" not in data and "samples" not in data:
        raise GanlandError(f"{p} holds {sorted(data)}; expected an array named 'images' (N, H, W[, C]) "
                           "or 'samples' (N, D)")
    return data


def cmd_compare(args) -> int:
    from .evaluation import compare, read_scores

    latest = []
    for src in args.sources:
        scores = read_scores(Path(src))
        if not scores:
            raise GanlandError(f"no scores in {src}")
        pick = ([s for s in scores if not s.source.startswith("in-training")] or scores)[-1]
        if pick.source.startswith("in-training"):  # a row names its run
            pick.source = f"{src}: {pick.source}"
        latest.append(pick)
    compare(latest)
    names = sorted({k for s in latest for k, v in s.metrics.items() if not isinstance(v, list)})
    width = max(len(s.source) for s in latest)
    print(f"protocol: {latest[0].protocol.evaluator} on {latest[0].protocol.dataset}, "
          f"{latest[0].protocol.n_generated} samples")
    print(f"{'':<{width}}  " + "  ".join(f"{n:>10}" for n in names))
    for s in latest:
        print(f"{s.source:<{width}}  " + "  ".join(f"{s.metrics.get(n, float('nan')):>10.4g}" for n in names))
    return 0


def cmd_report(args) -> int:
    from .report import write_report

    path = write_report(args.run, args.out, floor=not args.no_floor)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): one self-contained page; open it in a browser")
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

    return _list(MODELS, ("shape", "z_dim", "n_classes", "cond_shape"))


def cmd_losses(args) -> int:
    from .losses import LOSSES

    return _list(LOSSES)


def _rank():
    """This process's rank under torchrun (0 without it)."""
    import os

    return int(os.environ.get("RANK", "0"))


def _processes() -> int:
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganland", description="Train, evaluate and look at GANs.")
    p.add_argument("--version", action="version", version=f"ganland {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe or YAML config (or --resume a run)")
    t.add_argument("recipe", nargs="?", help="recipe name (see `ganland recipes`) or path to a YAML file")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set optim.D.lr=1e-4 (repeatable)")
    stop = t.add_mutually_exclusive_group()
    stop.add_argument("--steps", type=int, help="train until N generator steps in all (with --resume: counted from the run's start)")
    stop.add_argument("--epochs", type=float, help="train until N passes over the data in all")
    stop.add_argument("--minutes", type=float, help="train until M minutes of training time in all")
    t.add_argument("--out", help="run folder (default runs/<recipe>-<time>)")
    t.add_argument("--resume", metavar="RUN", help="continue RUN from its newest checkpoint")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and check it; train nothing")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained run into an .npz file or a .png grid")
    s.add_argument("run", help="run folder, checkpoint file or exported .safetensors file")
    s.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", required=True, help="output .npz (key `images` uint8 (N, H, W, C), or `samples`; "
                                                "`labels`), or .png: a grid of the images")
    s.add_argument("--class", dest="class_", help="class to generate, by number or name (conditional models)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    s.add_argument("--truncation", type=float, metavar="T",
                   help="truncation trick: redraw noise beyond +-T (e.g. 0.7: typical samples, less variety)")
    s.add_argument("--interpolate", type=int, metavar="STEPS",
                   help="--n walks of STEPS samples each between two noise vectors (slerp), one walk per row")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    s.set_defaults(func=cmd_sample)

    tr = sub.add_parser("translate", help="apply an image-to-image run (super-resolution, inpainting, denoising) "
                                          "to your images")
    tr.add_argument("run", help="run folder, checkpoint file or exported .safetensors file of an image-to-image run")
    tr.add_argument("--input", required=True, metavar="FILE_OR_FOLDER",
                    help="an image or a folder of images: low-resolution ones for super-resolution (the output is "
                         "factor x larger), noisy ones for denoising, the images with holes for inpainting")
    tr.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs (NAME.png for each input)")
    tr.add_argument("--mask", metavar="FILE_OR_FOLDER",
                    help="inpainting: the missing pixels (white = missing), one file, or a folder of masks named as "
                         "the inputs")
    tr.add_argument("--degrade", action="store_true",
                    help="the inputs are clean: degrade them as in training first (shrink, random holes, noise), to "
                         "see what the model restores")
    tr.add_argument("--seed", type=int, default=0, help="with --degrade: seed of the random holes or noise")
    tr.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    tr.set_defaults(func=cmd_translate)

    b = sub.add_parser("tensorboard", help="write TensorBoard events of a run trained without them "
                                           "(from stats.jsonl, metrics.jsonl and its pictures)")
    b.add_argument("run", help="run folder")
    b.set_defaults(func=cmd_tensorboard)

    x = sub.add_parser("export", help="write a run's generator to one .safetensors file (weights, config, classes)")
    x.add_argument("run", help="run folder or checkpoint file")
    x.add_argument("--out", required=True, help="the .safetensors file to write")
    x.add_argument("--no-ema", action="store_true", help="export the raw generator, not its moving average")
    x.set_defaults(func=cmd_export)

    e = sub.add_parser("eval", help="score runs, real data (--real) or foreign samples (--samples)")
    e.add_argument("runs", nargs="*", help="run folders (their newest checkpoint) or checkpoint files to evaluate")
    e.add_argument("--real", action="store_true", help="score real training samples: the floor of every metric")
    e.add_argument("--samples", metavar="FILE.npz", help="score samples made by any tool (key images or samples)")
    e.add_argument("--dataset", help="dataset of --real / --samples, e.g. fashion-mnist")
    e.add_argument("--root", help="folder holding that dataset's files (data.root)")
    e.add_argument("--image-size", type=int, help="image size of that dataset (data.image_size)")
    e.add_argument("--n", "--n-samples", dest="n", type=int,
                   help="samples to score (default: the run's eval.n_samples when it evaluated itself in training, "
                        "else 10,000 images, 2,500 2-D points, 1,000 sines); under torchrun write --n-samples, "
                        "since torchrun takes --n for an abbreviation of its own options")
    e.add_argument("--seed", type=int, help="noise / subset seed (default: the run's eval.seed when it evaluated "
                                            "itself in training, else 0)")
    e.add_argument("--feature-net", help="feature network (default: the dataset's bundled one)")
    e.add_argument("--inception-weights", metavar="PATH", help="pt_inception-2015-12-05 weights for inception-v3-fid")
    e.add_argument("--out", help="with --real / --samples: append the scores to this .jsonl file")
    e.add_argument("--no-record", action="store_true", help="do not append to the run's metrics.jsonl")
    e.add_argument("--device", default="cpu", help="device that generates the samples (default cpu)")
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="compare recorded scores (refuses different protocols)")
    c.add_argument("sources", nargs="+", help="run folders or metrics .jsonl files (newest final score of each)")
    c.set_defaults(func=cmd_compare)

    r = sub.add_parser("report", help="write a run's self-contained HTML report (curves, quality, samples, scores)")
    r.add_argument("run", help="run folder")
    r.add_argument("--out", metavar="FILE.html", help="the page to write (default RUN/report.html)")
    r.add_argument("--no-floor", action="store_true",
                   help="skip scoring real data for the quality curve's floor (faster; the curve stays)")
    r.set_defaults(func=cmd_report)

    from .numpy_gan.cli import add_parser as add_numpy_sine

    add_numpy_sine(sub)

    for name, fn, text in (("recipes", cmd_recipes, "list the recipes"), ("datasets", cmd_datasets, "list datasets"),
                           ("models", cmd_models, "list model families"), ("losses", cmd_losses, "list losses")):
        sub.add_parser(name, help=text).set_defaults(func=fn)
    return p


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    distributed = sys.modules.get(f"{__package__}.training.distributed")  # not imported: no process group
    if distributed is not None and distributed.joined():  # a torchrun worker ends here (why: its exit_now)
        distributed.exit_now(code)
    return code


def _main(argv: list[str] | None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except Interrupted as e:  # Ctrl-C or SIGTERM during training: what was saved, how to continue
        if _rank() == 0:  # every process stopped alike: rank 0 says so
            print(f"ganland: {e}", file=sys.stderr)
        return e.exit_code
    except GanlandError as e:
        rank = _rank()
        print(f"ganland: error{f' (process {rank})' if rank is not None and _processes() > 1 else ''}: {e}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside training (building a dataset, evaluating): nothing was being saved
        print("ganland: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ganland recipes | head`: the reader has gone; say nothing more
        try:  # and let Python's exit flush nothing into the closed pipe
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141


if __name__ == "__main__":
    sys.exit(main())
