"""The data-path lever (issue 5, item 3) on its own: real batches for fashion-dcgan, two ways.

  textbook - pytorch/examples' path: a map-style Dataset converting one uint8 image at a time
             (ToTensor + Normalize), a shuffling DataLoader (no workers: 2 cores) collating them
  ganland  - the training set held as one uint8 tensor, a permutation per epoch, one index
             gather and one conversion to [-1, 1] per batch (`ganland.training.loop.RealBatches`)

Both deliver the same batches (same size, same range, one epoch each, last partial batch
dropped); interleaved A B A B in one process, medians reported, with milliseconds per batch so
they can be set against a training step. Prints one JSON object.

    python benchmarks/data_path.py [--dataset fashion-mnist] [--batch-size 64] [--repeats 5]
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
from train_speed import TextbookImages  # noqa: E402  (the baseline's own Dataset)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--root", help="data folder (default: ganland's usual search)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5, help="A B rounds of one epoch each")
    args = ap.parse_args()

    from torch.utils.data import DataLoader

    from ganland.build import build_dataset
    from ganland.config import load_config
    from ganland.training.batches import RealBatches

    data = build_dataset(load_config(None, {"data.name": args.dataset, "data.root": args.root}), "train")
    bs = args.batch_size

    def textbook() -> int:
        n = 0
        for x, y in DataLoader(TextbookImages(data.x, data.y), batch_size=bs, shuffle=True, drop_last=True):
            n += 1
        return n

    def ganland() -> int:
        batches = RealBatches(data, bs, torch.Generator().manual_seed(0), torch.device("cpu"), labels=True)
        n, end = 0, False
        while not end:
            x, y, end = batches.next()
            n += 1
        return n

    times = {"textbook": [], "ganland": []}
    counts = {}
    for _ in range(args.repeats):
        for name, fn in (("textbook", textbook), ("ganland", ganland)):
            t0 = time.perf_counter()
            counts[name] = fn()
            times[name].append(time.perf_counter() - t0)
    assert counts["textbook"] == counts["ganland"], counts
    med = {k: statistics.median(v) for k, v in times.items()}
    per_batch = {k: v / counts[k] * 1e3 for k, v in med.items()}
    print(json.dumps({
        "benchmark": "data_path", "dataset": args.dataset, "images": len(data), "batch_size": bs,
        "batches_per_epoch": counts["ganland"],
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "threads": torch.get_num_threads()},
        "epoch_seconds": {k: round(v, 3) for k, v in med.items()},
        "epoch_seconds_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "ms_per_batch": {k: round(v, 3) for k, v in per_batch.items()},
        "images_per_s": {k: round(len(data) / v) for k, v in med.items()},
        "ratio_ganland_over_textbook": round(med["textbook"] / med["ganland"], 2),
    }, indent=1))


if __name__ == "__main__":
    main()
