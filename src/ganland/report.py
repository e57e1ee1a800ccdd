"""A run folder as one self-contained HTML page (`ganland report RUN`, `write_report`).

The page is a single file: every picture is embedded as a base64 `data:` URI and the style sheet
is inline, so it can be mailed, attached to an issue or archived beside the run and still show
everything. It needs no JavaScript and reaches for nothing outside itself.

What it shows, from what the run folder holds:
  header                  recipe, dataset, model, loss, steps, epochs, training minutes
  configuration           config.yaml as written
  training curves         losses, D's outputs and gradient norms (stats.jsonl)
  quality                 the in-training scores (metrics.jsonl) against the real-data floor of
                          the same protocol, computed here
  samples over time       the fixed-noise pictures (samples/step_*.png) as one animated GIF,
                          and the newest one (samples/latest.png)
  from the generator      per-class grids (conditional image models) and latent walks (image
                          models), drawn from the newest checkpoint
  scores                  every record of metrics.jsonl with its protocol
  guard events            rollbacks and stops of the divergence guard (stats.jsonl)
  epochs                  the per-epoch records: epoch losses and D's held-out report

A missing piece never stops the report: its section says what is missing and how to get it.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import yaml
from PIL import Image

from .errors import ConfigError, GanlandError
from .version import __version__

REPORT_NAME = "report.html"  # written into the run folder unless `out` says otherwise
GIF_FRAMES = 40  # most fixed-noise pictures in the animation (evenly chosen, the last always in)
GIF_WIDTH, GIF_MIN_WIDTH = 520, 200  # frame width (never enlarged), and the least it shrinks to for size
GIF_COLORS = 64  # palette per frame: sample pictures lose nothing visible, and the file shrinks by a quarter
GIF_MAX_BYTES = 2_000_000
GIF_FRAME_MS, GIF_LAST_MS = 300, 2000  # how long each frame shows; the last stays up longer
CLASSES_PER_GRID = 10  # per-class grids: one column per class, this many columns per picture
CLASSES_SHOWN = 50  # beyond this many classes only the first are drawn (an image folder of 1,000 classes)
ROWS_PER_CLASS = 8
WALK_STEPS, WALK_ROWS = 10, 8  # latent interpolations: walks of this many steps, this many walks
EPOCH_ROWS = 20  # most epochs listed in the per-epoch table
EPOCH_COLUMNS = ("epoch", "step", "epoch_loss_D", "epoch_loss_G", "heldout_loss_D_real", "train_loss_D_real")


@dataclass
class Section:
    """One part of the page: an anchor, a heading and its HTML body."""

    anchor: str
    title: str
    body: str


@dataclass
class Run:
    """What the report reads from a run folder, each piece None (or empty) when missing, with
    the reason kept for the page."""

    folder: Path
    config_text: str
    config: dict  # config.yaml as plain YAML (read even when this ganland cannot load it)
    cfg: object  # the checked Config, or None
    cfg_error: str
    stats: list[dict]
    scores: list  # evaluation.Score records of metrics.jsonl
    model: object  # the trained Generator, or None
    model_error: str


def write_report(run_dir: str | Path, out: Optional[str | Path] = None, floor: bool = True) -> Path:
    """Write the HTML report of a run folder to `out` (default RUN/report.html); returns its path.

    floor: score real training samples under the in-training scores' protocol and draw that
    real-data floor on the quality curve (this evaluates the dataset: seconds for small
    protocols; set False to skip it)."""
    run = read_run(run_dir)
    with tempfile.TemporaryDirectory(prefix="ganland-report-") as tmp:
        sections = [
            config_section(run),
            curves_section(run, Path(tmp)),
            quality_section(run, Path(tmp), floor),
            samples_section(run),
            generator_section(run, Path(tmp)),
            scores_section(run),
            guard_section(run),
            epochs_section(run),
        ]
    path = Path(out) if out is not None else run.folder / REPORT_NAME
    _write_text(path, page(run, sections))
    return path


# ---------------------------------------------------------------------------------------------
# Reading the run folder


def read_run(run_dir: str | Path) -> Run:
    """The pieces of a run folder. Only a missing folder or config.yaml is an error: without
    them there is no run to describe."""
    from .config import load_config

    folder = Path(run_dir)
    config_path = folder / "config.yaml"
    if not folder.is_dir():
        raise ConfigError(f"no run folder at {folder}: give the folder a training wrote (runs/NAME)")
    if not config_path.is_file():
        raise ConfigError(f"{folder} has no config.yaml, so it is not a ganland run folder (one holds config.yaml, "
                          "stats.jsonl, samples/ and checkpoints/); give the folder `ganland train` wrote")
    text = config_path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{config_path} is not valid YAML ({e}); restore it from a checkpoint's config") from None
    cfg, cfg_error = None, ""
    try:
        cfg = load_config(str(config_path))
    except GanlandError as e:  # e.g. written by another ganland version: the header still reads the raw YAML
        cfg_error = str(e)
    model, model_error = _load_generator(folder)
    return Run(folder, text, raw if isinstance(raw, dict) else {}, cfg, cfg_error, read_jsonl(folder / "stats.jsonl"),
               _read_scores(folder), model, model_error)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file; [] when it is missing. A line cut short by a kill is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _read_scores(folder: Path) -> list:
    from .evaluation import read_scores

    return read_scores(folder) if (folder / "metrics.jsonl").is_file() else []


def _load_generator(folder: Path):
    """(the generator of the newest checkpoint, "") or (None, why not)."""
    from .generator import load

    try:
        return load(folder), ""
    except GanlandError as e:
        return None, str(e)


def training_records(stats: list[dict]) -> list[dict]:
    return [r for r in stats if r.get("kind", "train") == "train" and isinstance(r.get("step"), int)]


def progress(run: Run) -> dict:
    """How far the run got: step, epoch (fractional) and training seconds of its newest record."""
    rows = [r for r in run.stats if r.get("kind", "train") in ("train", "epoch") and isinstance(r.get("step"), int)]
    if not rows:
        return {}
    last = max(rows, key=lambda r: (r["step"], r.get("seconds", 0)))
    train_rows = training_records(run.stats)
    epoch = max(train_rows, key=lambda r: r["step"]).get("epoch") if train_rows else last.get("epoch")
    return {"step": last["step"], "epoch": epoch, "seconds": max(r.get("seconds", 0) or 0 for r in rows)}


# ---------------------------------------------------------------------------------------------
# Sections


def config_section(run: Run) -> Section:
    body = f"<details><summary>config.yaml ({len(run.config_text.splitlines())} lines)</summary>" \
           f"<pre>{_e(run.config_text)}</pre></details>"
    if run.cfg_error:
        body += _note(f"This ganland ({__version__}) cannot load this config: {run.cfg_error}. The header reads "
                      "it as plain YAML; the real-data floor needs the checked config.")
    return Section("config", "Configuration", body)


def curves_section(run: Run, tmp: Path) -> Section:
    from .viz import training_curves

    rows = training_records(run.stats)
    if not rows:
        why = "no stats.jsonl" if not (run.folder / "stats.jsonl").is_file() else "no training records in stats.jsonl"
        return Section("curves", "Training curves",
                       _note(f"{why}: the run writes one every train.log_every steps; train (or resume) it "
                             "past its first logging step for curves."))
    path = training_curves(rows, tmp / "training.png", f"{run.folder.name}: {len(rows)} records of stats.jsonl")
    caption = ("Losses; what D says about real and generated batches (D(x) and D(G(z)) for probabilistic "
               "losses, else the mean logits); gradient norms of D and G, log scale. Means over each "
               "logging window against the generator step.")
    return Section("curves", "Training curves", _figure(path.read_bytes(), "training curves", caption))


def quality_section(run: Run, tmp: Path, want_floor: bool) -> Section:
    """The in-training scores of one protocol (the newest's) against the step, and the real-data
    floor under that same protocol: the value a perfect generator would score."""
    from .evaluation import EVALUATORS
    from .viz import quality_curve

    title = "Quality against the real-data floor"
    in_training = [s for s in run.scores if s.source.startswith("in-training")]
    if not in_training:
        return Section("quality", title, _note(
            "No in-training scores in metrics.jsonl, so there is no quality curve. Train with "
            "<code>--set eval.every=500</code> (with <code>eval.n_samples</code>, default 2,000) for one, or "
            f"continue this run with <code>ganland train --resume {_e(run.folder)} --set eval.every=500 "
            "--steps N</code>. <code>ganland eval RUN</code> adds single scores to the table below."))
    protocol = in_training[-1].protocol
    curve = [s for s in in_training if s.protocol.key() == protocol.key()]
    try:
        evaluator = EVALUATORS.get(protocol.evaluator)
    except GanlandError as e:
        return Section("quality", title, _note(f"The scores name an evaluator this ganland does not know: {e}"))
    metric = evaluator.headline
    floor_score, floor_text = _floor(run, protocol, want_floor)
    floor_value = floor_score.metrics.get(metric) if floor_score is not None else None
    path = quality_curve(curve, tmp / "quality.png", metric,
                         floor=floor_value if isinstance(floor_value, (int, float)) else None,
                         log_scale=evaluator.log_scale)
    caption = (f"{_e(metric)} of {len(curve)} in-training evaluations against the generator step; "
               f"{_protocol_line(protocol)}.")
    if len(curve) < len(in_training):
        caption += (f" {len(in_training) - len(curve)} in-training score(s) under another protocol are left "
                    "out of the curve (see the table of scores).")
    figure = _figure(path.read_bytes(), f"{metric} during training", caption)
    if floor_score is None:
        return Section("quality", title, figure + floor_text)
    return Section("quality", title, f"<div class=\"row\">{figure}{_versus_floor(curve[-1], floor_score, metric)}"
                                     f"</div>{floor_text}")


def real_data_floor(cfg, protocol):
    """Real training samples scored as if generated, under `protocol` (its number of samples, seed
    and feature network): what a perfect generator would score. Raises ConfigError when the
    result would not be comparable (the dataset changed since, another ganland version)."""
    from .evaluation import evaluate_real

    score = evaluate_real(cfg, n=protocol.n_generated, seed=protocol.seed, feature_net=protocol.feature_net,
                          weights=cfg.eval.inception_weights, full=cfg.eval.full)  # the metrics the run computed
    differences = score.protocol.differences(protocol)
    if differences:
        raise ConfigError(f"the real data scores under another protocol than the run's scores "
                          f"({'; '.join(differences)}), so the two are not comparable")
    return score


def _floor(run: Run, protocol, wanted: bool):
    """(floor Score or None, an HTML paragraph saying what the floor is or why there is none)."""
    if not wanted:
        return None, _note("Real-data floor not computed (<code>--no-floor</code>). Without it, read the "
                           "curve's values against the floors in docs/metrics.md.")
    if run.cfg is None:
        return None, _note(f"No real-data floor: the run's config cannot be loaded ({_e(run.cfg_error)}).")
    try:
        score = real_data_floor(run.cfg, protocol)
    except (GanlandError, OSError) as e:
        return None, _note(f"No real-data floor: the real data could not be scored under this protocol: {_e(e)}. "
                           "Make the dataset readable (see docs/data.md) and write the report again, or skip "
                           "the floor with <code>--no-floor</code>.")
    if protocol.evaluator == "restoration":  # image-to-image: the floor is the inputs, restored by nothing
        return score, (f"<p>The dashed line is the baseline: the {protocol.n_generated:,} inputs themselves "
                       f"({_e(score.source.partition('(')[2].rstrip(')'))}) scored as if they were the outputs, under "
                       "the same protocol: the model must beat it (computed here in "
                       f"{_duration(score.seconds)}).</p>")
    return score, (f"<p>The dashed line is the real-data floor: {protocol.n_generated:,} real samples of the "
                   "training data scored as if generated, under the same protocol: what a perfect generator "
                   f"would score (computed here in {_duration(score.seconds)}).</p>")


def _versus_floor(newest, floor_score, headline: str) -> str:
    """A small table: the newest in-training score next to the floor, metric by metric."""
    names = [k for k, v in newest.metrics.items() if _is_number(v) and _is_number(floor_score.metrics.get(k))]
    rows = "".join(f"<tr class=\"{'headline' if k == headline else ''}\"><th class=\"text\">{_e(k)}</th>"
                   f"<td>{_num(newest.metrics[k])}</td><td>{_num(floor_score.metrics[k])}</td></tr>" for k in names)
    other = "inputs (baseline)" if newest.protocol.evaluator == "restoration" else "real-data floor"
    return (f"<table class=\"compact\"><thead><tr><th class=\"text\">metric</th><th>step {newest.step:,}</th>"
            f"<th>{other}</th></tr></thead><tbody>{rows}</tbody></table>")


def samples_section(run: Run) -> Section:
    """The fixed-noise pictures as an animation, beside the newest one as the run saved it."""
    folder = run.folder / "samples"
    frames = sorted(folder.glob("step_*.png"))
    latest = folder / "latest.png"
    figures, notes = [], ""
    if frames:
        gif, chosen = animated_gif(pick_frames(frames, GIF_FRAMES))
        figures.append(_figure(gif, "fixed-noise samples over training", (
            f"The same noise at {len(chosen)} of the {len(frames)} saved steps ({_step_of(chosen[0]):,} to "
            f"{_step_of(chosen[-1]):,}), {GIF_FRAME_MS} ms each; the last stays up {GIF_LAST_MS / 1000:g} s "
            f"({len(gif) / 1e6:.2f} MB).")))
    else:
        notes = _note("No fixed-noise pictures in samples/: the run draws them every train.sample_every steps "
                      "and at its end.")
    if latest.is_file():
        figures.append(_figure(latest.read_bytes(), "the newest fixed-noise samples", _latest_caption(run)))
    return Section("samples", "Samples over time", notes + f"<div class=\"row\">{''.join(figures)}</div>")


def pick_frames(frames: list, most: int) -> list:
    """At most `most` of `frames`, evenly spread, always the first and the last."""
    if len(frames) <= most:
        return list(frames)
    index = np.unique(np.linspace(0, len(frames) - 1, most).round().astype(int))
    return [frames[i] for i in index]


def animated_gif(paths: list[Path], max_bytes: int = GIF_MAX_BYTES) -> tuple[bytes, list[Path]]:
    """The pictures as a looping GIF of at most `max_bytes`, and the pictures it holds.

    Frames are GIF_WIDTH wide (or the pictures' own width when narrower). A GIF that comes out
    too big is made again narrower, at the width its pixel count says should fit (LZW sizes grow
    with the area); at GIF_MIN_WIDTH, with fewer frames instead (two at the least, the first and
    the last: past that the budget gives way)."""
    with Image.open(paths[-1]) as newest:
        width = min(newest.width, GIF_WIDTH)
    data = _gif(paths, width)
    while len(data) > max_bytes and len(paths) > 2:
        shrink = math.sqrt(max_bytes / len(data)) * 0.95  # a little under, so one more try usually does it
        if width > GIF_MIN_WIDTH:
            width = max(GIF_MIN_WIDTH, int(width * shrink))
        else:
            paths = pick_frames(paths, max(2, int(len(paths) * shrink * shrink)))
        data = _gif(paths, width)
    return data, paths


def _gif(paths: list[Path], width: int) -> bytes:
    size = None
    frames = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if size is None:  # every frame at the first one's size (pictures of one run rarely differ)
                size = (width, max(1, round(im.height * width / im.width)))
            im = im.resize(size, Image.LANCZOS) if im.size != size else im
            # One adaptive palette per frame: plots have few colours, grids are grey or photo-like.
            frames.append(im.quantize(colors=GIF_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    durations = [GIF_FRAME_MS] * (len(frames) - 1) + [GIF_LAST_MS]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=True)
    return buf.getvalue()


def _latest_caption(run: Run) -> str:
    """What samples/latest.png shows, which depends on the kind of data."""
    step = progress(run).get("step")
    at = f"at step {step:,}" if step is not None else "the newest"
    model = run.model
    if model is None:
        return f"The newest fixed-noise samples ({at})."
    if getattr(model, "paired", False):
        return (f"Fixed test images ({at}), as the run saved them: in each block of three rows, the inputs "
                f"({_e(model.degradation.spec())}), the model's outputs and the truth.")
    if model.is_image:
        conditional = " One column per class." if model.n_classes else ""
        return f"The newest fixed-noise samples ({at}), as the run saved them.{conditional}"
    if model.shape == (1,):
        return (f"1-D samples ({at}): a histogram of the generated values over the target density "
                "(black line).")
    if model.shape == (2,):
        options = getattr(model.config.model, "options", {}) or {}
        surface = not model.n_classes and int(options.get("pack", 1)) == 1
        return (f"2-D samples ({at}): generated points (orange) over real ones (black; crosses mark a mixture's "
                "modes)" + (", on D's logit surface (red: D says real, blue: D says fake)." if surface else "."))
    return f"Generated curves ({at}) next to real ones."


def generator_section(run: Run, tmp: Path) -> Section:
    """Pictures drawn here from the trained generator: per-class grids and latent walks."""
    title = "From the trained generator"
    model = run.model
    if model is None:
        return Section("generator", title, _note(
            f"No generator to draw from: {_e(run.model_error)} A run writes a checkpoint every "
            "train.checkpoint_every steps and at its end; continue this one with "
            f"<code>ganland train --resume {_e(run.folder)}</code> once it has one, or train it again."))
    if not model.is_image:
        return Section("generator", title, _note(
            "This model makes vectors, not images: its pictures are the fixed-noise samples above. Draw more with "
            f"<code>ganland sample {_e(run.folder)} --n 10000 --out samples.npz</code>."))
    if getattr(model, "paired", False):
        return Section("generator", title, _restorations(model, tmp))
    which = "the EMA generator" if model.config.train.ema else "the generator"
    intro = f"<p>Drawn for this report from {which} of the newest checkpoint (step {model.step:,}), noise seed 0.</p>"
    parts = [intro]
    if model.n_classes:
        parts.append(_class_grids(model, tmp))
    parts.append(_walks(model, tmp))
    return Section("generator", title, "".join(parts))


def _restorations(model, tmp: Path) -> str:
    """An image-to-image model on test images it was not trained on: input, output, truth."""
    from .build import build_dataset
    from .training.pictures import PAIRED_COLUMNS, paired_rows
    from .viz import save_grid

    try:
        test = build_dataset(model.config, "test")
    except (GanlandError, OSError) as e:
        return _note(f"No restorations drawn: the test split could not be read ({_e(e)}).")
    columns = min(PAIRED_COLUMNS, len(test))
    n = min(3 * PAIRED_COLUMNS, len(test)) // columns * columns  # whole rows only
    idx = torch.arange(len(test) - n, len(test))  # the last test images: others than the run's own pictures
    inputs = test.inputs(idx, 0)
    outputs = np.ascontiguousarray(model.translate(inputs).transpose(0, 3, 1, 2))
    path = save_grid(tmp / "restorations.png", paired_rows(inputs, outputs, test.x[idx].numpy(), columns),
                     ncols=columns)
    which = "the EMA generator" if model.config.train.ema else "the generator"
    return (f"<p>Drawn for this report from {which} of the newest checkpoint (step {model.step:,}) on the last {n} "
            "test images (inputs seed 0).</p>"
            + _figure(path.read_bytes(), "restorations", "In each block of three rows: the inputs "
                      f"({_e(model.degradation.spec())}), the outputs, the truth. Apply the model to your own images "
                      "with <code>ganland translate RUN --input FILE_OR_FOLDER --out DIR</code>.", "pixels"))


def _class_names(model) -> list[str]:
    names = list(model.class_names or [])
    return [names[k] if k < len(names) else str(k) for k in range(model.n_classes)]


def _class_grids(model, tmp: Path) -> str:
    from .viz import save_grid

    names = _class_names(model)
    shown = min(model.n_classes, CLASSES_SHOWN)
    parts = []
    for first in range(0, shown, CLASSES_PER_GRID):
        classes = list(range(first, min(first + CLASSES_PER_GRID, shown)))
        wanted = [classes[i % len(classes)] for i in range(ROWS_PER_CLASS * len(classes))]  # class k in column k
        images = model.sample(len(wanted), classes=wanted, seed=0)["images"]
        path = save_grid(tmp / f"classes-{first}.png", images, ncols=len(classes),
                         column_labels=[names[k] for k in classes])
        parts.append(_figure(path.read_bytes(), f"classes {classes[0]} to {classes[-1]}",
                             f"{ROWS_PER_CLASS} samples of each class, one column per class.", "pixels"))
    if model.n_classes > shown:
        parts.append(_note(f"Only the first {shown} of {model.n_classes} classes are drawn; sample any class with "
                           "<code>ganland sample RUN --class NAME --out class.png</code>."))
    return "<h3>One grid per class</h3>" + "".join(parts)


def _walks(model, tmp: Path) -> str:
    from .viz import save_grid

    rows = min(model.n_classes, WALK_ROWS) if model.n_classes else WALK_ROWS
    out = model.interpolate(WALK_STEPS, rows=rows, seed=0)
    path = save_grid(tmp / "walks.png", out["images"], ncols=WALK_STEPS)
    caption = (f"{rows} walks of {WALK_STEPS} steps, each from one noise vector to another along the sphere "
               "(slerp), one walk per row. Smooth changes mean G maps nearby noise to nearby images.")
    if "labels" in out:
        names = _class_names(model)
        row_classes = out["labels"][::WALK_STEPS]
        caption += " Rows, top to bottom: " + ", ".join(names[k] for k in row_classes) + "."
    return "<h3>Latent interpolations</h3>" + _figure(path.read_bytes(), "latent interpolations", caption, "pixels")


def scores_section(run: Run) -> Section:
    """Every record of metrics.jsonl: its numbers, and its protocol by letter (a table of
    protocols below it), so that scores of different protocols are not read side by side."""
    title = "Scores and their protocols"
    if not run.scores:
        return Section("scores", title, _note(
            "No metrics.jsonl: nothing has been scored. <code>ganland eval "
            f"{_e(run.folder)}</code> scores the newest checkpoint; <code>--set eval.every=500</code> scores "
            "during training."))
    protocols: dict = {}
    for s in run.scores:
        protocols.setdefault(s.protocol.key(), s.protocol)
    letter = {key: _letter(i) for i, key in enumerate(protocols)}
    names: list[str] = []
    for s in run.scores:
        names += [k for k in s.metrics if k not in names]
    head = "".join(f"<th>{_name(n)}</th>" for n in names)
    rows = []
    for s in run.scores:
        cells = "".join(f"<td>{_value(s.metrics.get(n))}</td>" for n in names)
        tag = letter[s.protocol.key()]
        rows.append(f"<tr><td class=\"text\">{_e(s.source)}</td><td>{'' if s.step is None else _num(s.step)}</td>"
                    f"<td class=\"text\"><a href=\"#protocol-{tag}\">{tag}</a></td>{cells}</tr>")
    table = (f"<div class=\"wide\"><table><thead><tr><th class=\"text\">source</th><th>step</th>"
             f"<th class=\"text\">protocol</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    lists = " Lists (class histograms, mode counts) are drawn as small bar charts; hover for the numbers." \
        if any(isinstance(v, list) for s in run.scores for v in s.metrics.values()) else ""
    return Section("scores", title, f"<p>{len(run.scores)} record(s) of metrics.jsonl, oldest first. Compare only "
                   f"scores of one protocol (letter).{lists}</p>" + table + _protocol_table(protocols, letter))


def _protocol_table(protocols: dict, letter: dict) -> str:
    fields = ("evaluator", "dataset", "n_generated", "n_real", "reference", "seed", "feature_net",
              "feature_net_sha256", "ganland_version")
    head = "".join(f"<th class=\"text\">{_name(f)}</th>" for f in fields)
    rows = []
    for key, p in protocols.items():
        cells = []
        for f in fields:
            v = getattr(p, f, None)
            shown = (v[:12] + "…") if f == "feature_net_sha256" and v else ("—" if v is None else v)
            cells.append(f"<td class=\"text\">{_e(f'{shown:,}' if isinstance(shown, int) else shown)}</td>")
        tag = letter[key]
        rows.append(f"<tr id=\"protocol-{tag}\"><th class=\"text\">{tag}</th>{''.join(cells)}</tr>")
    return (f"<h3>Protocols</h3><div class=\"wide\"><table><thead><tr><th class=\"text\"></th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def guard_section(run: Run) -> Section:
    title = "Rollbacks and guard events"
    events = [r for r in run.stats if r.get("kind") == "guard"]
    if not events:
        off = run.cfg is not None and not run.cfg.train.guard
        text = ("none: the divergence guard was off (train.guard=false)." if off else
                "none: the divergence guard found no NaN/inf (nor a saturated D, when that is checked), so it "
                "never rolled the run back.")
        return Section("guard", title, f"<p>{text}</p>")
    rows = []
    for r in events:
        # A rollback records the step it went back to and where the problem was found; a stop, only the latter.
        found, back = (r.get("detected_at"), r.get("step")) if "detected_at" in r else (r.get("step"), "—")
        rows.append(f"<tr><td>{_e(found)}</td><td>{_e(back)}</td><td>{_e(r.get('epoch', ''))}</td>"
                    f"<td class=\"text wrap\">{_e(r.get('problem', ''))}</td>"
                    f"<td class=\"text wrap\">{_e(r.get('action', ''))}</td></tr>")
    return Section("guard", title, (
        f"<p>{len(events)} event(s) of the divergence guard: each rollback restored the newest good checkpoint "
        "and halved both learning rates; a stop ended the run.</p><div class=\"wide\"><table><thead><tr>"
        "<th>found at step</th><th>back to step</th><th>epoch</th><th class=\"text\">problem</th><th class=\"text\">action</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"))


def epochs_section(run: Run) -> Section:
    """The per-epoch records; with D's held-out report, the gap between its loss on test and on
    training images (seed 000's validation: a gap that grows means D memorises the training set)."""
    title = "Per-epoch report"
    records = [r for r in run.stats if r.get("kind") == "epoch"]
    if not records:
        return Section("epochs", title, _note(
            "No epoch records in stats.jsonl: the run has not finished an epoch yet (one is written at each "
            "epoch's end)."))
    columns = [c for c in EPOCH_COLUMNS if any(c in r for r in records)]
    columns += [k for r in records for k in r if k not in columns and k not in ("kind", "images", "seconds")
                and _is_number(r[k])]
    columns = list(dict.fromkeys(columns))
    gap = "heldout_loss_D_real" in columns and "train_loss_D_real" in columns
    head = "".join(f"<th>{_name(c)}</th>" for c in columns) + ("<th>held-out − train</th>" if gap else "")
    shown = pick_frames(records, EPOCH_ROWS)  # a long run's hundreds of epochs: evenly chosen, the last kept
    rows = []
    for r in shown:
        cells = "".join(f"<td>{_value(r.get(c))}</td>" for c in columns)
        if gap:
            a, b = r.get("heldout_loss_D_real"), r.get("train_loss_D_real")
            cells += f"<td>{_num(a - b) if _is_number(a) and _is_number(b) else '—'}</td>"
        rows.append(f"<tr>{cells}</tr>")
    text = ("<p>Epoch means of the losses and D's real-data loss on held-out test batches next to the same "
            "on training batches: a gap that grows from epoch to epoch means D memorises the training set.</p>"
            if gap else "<p>Epoch means of the losses (no held-out report: toy samplers draw every batch fresh, "
            "and image-to-image runs with loss.adv_weight=0 train no D).</p>")
    if len(shown) < len(records):
        text += f"<p>{len(shown)} of the {len(records)} epochs, evenly spread (stats.jsonl has them all).</p>"
    return Section("epochs", title, text + f"<div class=\"wide\"><table><thead><tr>{head}</tr></thead>"
                                           f"<tbody>{''.join(rows)}</tbody></table></div>")


# ---------------------------------------------------------------------------------------------
# The page


STYLE = """
:root { --ink: #1f2933; --muted: #5f6b76; --line: #dfe4ea; --soft: #f5f7f9; --accent: #2f6690; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1120px; padding: 28px 32px 56px; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.7em; margin: 0 0 2px; }
h2 { font-size: 1.3em; margin: 0 0 10px; }
h3 { font-size: 1.05em; margin: 22px 0 8px; }
a { color: var(--accent); }
.subtitle { color: var(--muted); margin: 0 0 16px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; margin: 0; }
.facts div { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.facts dt { font-size: .72em; letter-spacing: .06em; text-transform: uppercase; color: var(--muted); }
.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
nav { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 18px 0 0; font-size: .92em; }
nav a { white-space: nowrap; }
section { border-top: 1px solid var(--line); margin-top: 30px; padding-top: 18px; }
figure { margin: 10px 0 16px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figure.pixels img { image-rendering: pixelated; }
.row { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
.row > figure { flex: 1 1 440px; max-width: 620px; }
.row > table { flex: 0 0 auto; }
figcaption { color: var(--muted); font-size: .88em; margin-top: 6px; max-width: 860px; }
details { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
summary { cursor: pointer; font-weight: 600; }
pre { margin: 10px 0 0; overflow-x: auto; font-size: .85em; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
code { background: var(--soft); padding: 1px 4px; border-radius: 3px; font-size: .9em; }
.note { background: #fff7e0; border-left: 4px solid #d9a420; padding: 8px 12px; border-radius: 4px; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; font-size: .84em; font-variant-numeric: tabular-nums; margin: 8px 0; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top;
  white-space: nowrap; }
td.wrap { white-space: normal; min-width: 240px; }
thead th { background: var(--soft); white-space: normal; vertical-align: bottom; }
.text { text-align: left; }
tr.headline td, tr.headline th { font-weight: 700; }
td .list { font-family: "DejaVu Sans Mono", ui-monospace, monospace; color: var(--accent); letter-spacing: 1px;
  border-bottom: 1px solid var(--line); }
footer { margin-top: 36px; color: var(--muted); font-size: .85em; }
"""


def page(run: Run, sections: list[Section]) -> str:
    """The whole HTML document: header with the run's facts, a table of contents, the sections."""
    nav = "".join(f"<a href=\"#{s.anchor}\">{_e(s.title)}</a>" for s in sections)
    body = "".join(f"<section id=\"{s.anchor}\"><h2>{_e(s.title)}</h2>{s.body}</section>" for s in sections)
    description = run.config.get("description") or ""
    made = time.strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>ganland report: {_e(run.folder.name)}</title>"
        "<link rel=\"icon\" href=\"data:,\">"  # no favicon request: the page reaches for nothing outside itself
        f"<style>{STYLE}</style></head><body>"
        f"<header><h1>{_e(run.folder.name)}</h1>"
        f"<p class=\"subtitle\">{_e(description or run.folder.resolve())}</p>{_facts(run)}<nav>{nav}</nav></header>"
        f"<main>{body}</main>"
        f"<footer>Written by ganland {__version__} on {made} from {_e(run.folder.resolve())}.</footer>"
        "</body></html>\n")


def _facts(run: Run) -> str:
    """The header's key facts, from config.yaml (as plain YAML) and the newest stats record."""
    c = run.config
    data, model, loss, train = (c.get(k) or {} for k in ("data", "model", "loss", "train"))
    dataset = str(data.get("name", "?")) + (f" @ {data['image_size']} px" if data.get("image_size") else "")
    model_name = str(model.get("name", "?")) + (", conditional" if model.get("conditional") else "")
    loss_name = str(loss.get("name", "?")) + (f", GP {loss['gp_weight']:g}" if _is_number(loss.get("gp_weight"))
                                              and loss["gp_weight"] else "")
    done = progress(run)
    planned = train.get("steps")
    steps = (f"{done['step']:,}" + (f" of {planned:,}" if isinstance(planned, int) else "")) if done else "—"
    epochs = f"{done['epoch']:.2f}" if done and _is_number(done.get("epoch")) else "—"
    minutes = _duration(done["seconds"]) if done and _is_number(done.get("seconds")) else "—"
    facts = [("recipe", c.get("recipe") or "(own config)"), ("dataset", dataset), ("model", model_name),
             ("loss", loss_name), ("steps", steps), ("epochs", epochs), ("training time", minutes),
             ("batch size", train.get("batch_size", "—")),
             ("EMA", f"{train['ema']:g}" if _is_number(train.get("ema")) else "off"),
             ("scores", len(run.scores))]
    cells = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts)
    return f"<dl class=\"facts\">{cells}</dl>"


# ---------------------------------------------------------------------------------------------
# HTML pieces


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _name(key: str) -> str:
    """A column heading from a record's key: it may break after each underscore, so that
    many metrics fit side by side (class_coverage_1pct takes three short lines, not one long one)."""
    return "_<wbr>".join(_e(part) for part in str(key).split("_"))


def _note(text_html: str) -> str:
    return f"<p class=\"note\">{text_html}</p>"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _figure(data: bytes, alt: str, caption_html: str, kind: str = "") -> str:
    """A picture (PNG or GIF bytes) embedded in the page, at its own size, with a caption."""
    with Image.open(io.BytesIO(data)) as im:
        width, height, mime = im.width, im.height, Image.MIME.get(im.format, "image/png")
    cls = f" class=\"{kind}\"" if kind else ""
    return (f"<figure{cls}><img src=\"{data_uri(data, mime)}\" alt=\"{_e(alt)}\" width=\"{width}\" "
            f"height=\"{height}\"><figcaption>{caption_html}</figcaption></figure>")


def _protocol_line(p) -> str:
    real = f"{p.n_real:,} real" if p.n_real else "a closed-form target"
    net = f", {_e(p.feature_net)}" if p.feature_net else ""
    return f"protocol: {_e(p.evaluator)} on {_e(p.dataset)}, {p.n_generated:,} generated vs {real}{net}, seed {p.seed}"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(v) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, float) and math.isfinite(v):
        return f"{v + 0.0:.4g}"  # + 0.0: -0.0 shows as 0
    return _e(v)  # inf, nan


SPARKS = "▁▂▃▄▅▆▇█"


def _value(v) -> str:
    """A table cell: numbers compactly; a list (a class histogram, mode counts) as a one-line bar
    chart, one bar per entry, with its numbers in the tooltip."""
    if v is None:
        return "—"
    if isinstance(v, list):
        if not v or not all(_is_number(x) and math.isfinite(x) for x in v):
            return _e(" ".join(map(str, v)))
        top = max(max(v), 1e-12)
        bars = "".join(SPARKS[min(len(SPARKS) - 1, int(len(SPARKS) * max(x, 0) / top))] if x > 0 else " "
                       for x in v)
        return f"<span class=\"list\" title=\"{_e(' '.join(_num(x) for x in v))}\">{bars}</span>"
    return _num(v)


def _duration(seconds: float) -> str:
    """A time in minutes (the unit of train.minutes), or in seconds when under a minute."""
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 0.1:
        return "under 0.1 s"
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


def _letter(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: a short name for each protocol."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def _step_of(path: Path) -> int:
    return int(path.stem.split("_")[-1])


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a report being rewritten is never half there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"could not write the report to {path}: {e.strerror or e}; pass another --out") from None
