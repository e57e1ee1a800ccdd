"""Pack what a GPU-machine call needs to continue small-data runs there, under the device tool's
64 MiB limit on what travels (tools/gpu_check.sh extend).

    python tools/device_carry.py --runs /tmp/qs/small-sngan-noaug-seed1 /tmp/qs/small-sngan-tc-seed1 \
        [--data /usr/share/datasets/fashion-mnist] [--per-class 100] [--into .device-carry]

Writes into --into (gitignored):
- fashion-mnist/: the test split whole, and the training split cut to its first images, as many as
  hold --per-class images of every class. A run with data.options.per_class trains on the first
  that many images of each class in file order, so the cut files give it the very same images
  (checked here: same indices), at 0.5 MB instead of 26. Point GANLAND_CACHE at --into
  on the device: a run whose data.root is null finds its files in the cache folder (where the
  machine has no system copy of its own, which would be looked at first: the same images).
- runs/NAME/: each run folder with its newest checkpoint only (the one a resume reads), its config
  and its logs; the older checkpoints stay here.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ganland.data.idx import SPLIT_FILES, find_in, first_per_class, load_idx_pair, write_idx  # noqa: E402
from ganland.training.checkpoint import list_checkpoints  # noqa: E402


def split_files(folder: Path, split: str) -> tuple[Path, Path]:
    """(images, labels) of one split in `folder`, gzip-compressed or not."""
    found, missing = find_in(folder, SPLIT_FILES[split])
    if found is None:
        raise SystemExit(f"{folder} does not hold {', '.join(missing)} (or them uncompressed)")
    return found


def cut_training_split(data: Path, into: Path, per_class: int) -> int:
    """Write the first images of the training split that hold `per_class` of each class (and the
    test split whole) into `into`; the number of training images kept."""
    images, labels = load_idx_pair(*split_files(data, "train"))
    n_classes = int(labels.max()) + 1
    keep = first_per_class(labels, per_class, n_classes, "training split")
    n = int(keep.max()) + 1  # every kept image lies before this one
    if not np.array_equal(first_per_class(labels[:n], per_class, n_classes, "cut split"), keep):
        raise SystemExit("the cut training split would select other images; nothing written")
    for name, array in zip(SPLIT_FILES["train"], (images[:n], labels[:n])):
        write_idx(into / (name + ".gz"), array)
    for path in split_files(data, "test"):
        shutil.copy2(path, into / path.name)
    return n


def newest_only(run: Path, into: Path) -> Path:
    """A copy of run folder `run` in `into` with its newest checkpoint only."""
    found = list_checkpoints(run)
    if not found:
        raise SystemExit(f"{run} has no checkpoint to continue from")
    dest = into / run.name
    if dest.resolve() == run.resolve():
        raise SystemExit(f"{run} is already in {into}: give the original run folder, not the packed copy")
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "checkpoints").mkdir(parents=True)
    for f in run.iterdir():
        if f.is_file():
            shutil.copy2(f, dest / f.name)
    shutil.copy2(found[0], dest / "checkpoints" / found[0].name)
    return dest / "checkpoints" / found[0].name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders to continue on the device")
    ap.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                    help="folder with the four Fashion-MNIST IDX files")
    ap.add_argument("--per-class", type=int, default=100, help="the runs' data.options.per_class")
    ap.add_argument("--into", type=Path, default=ROOT / ".device-carry",
                    help="where to pack (default: .device-carry in the repository, which git ignores)")
    args = ap.parse_args()
    data_dir = args.into / "fashion-mnist"
    data_dir.mkdir(parents=True, exist_ok=True)
    n = cut_training_split(args.data, data_dir, args.per_class)
    print(f"{data_dir}: the first {n} training images (holding {args.per_class} of each class) and the test split")
    for run in args.runs:
        print(f"{newest_only(run, args.into / 'runs')}")
    total = sum(f.stat().st_size for f in args.into.rglob("*") if f.is_file())
    print(f"{args.into}: {total / 2**20:.1f} MiB to carry")


if __name__ == "__main__":
    main()
