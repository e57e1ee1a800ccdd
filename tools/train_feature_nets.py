#!/usr/bin/env python
"""Train the bundled domain feature networks (fashion-mnist-cnn, mnist-cnn) reproducibly.

    python tools/train_feature_nets.py                       # both nets, into src/ganland/metrics/weights/
    python tools/train_feature_nets.py --nets mnist-cnn --out /tmp/nets

Data: Fashion-MNIST, all 60,000 training images (test accuracy on its 10,000 test images);
MNIST: only the 10k real subset in ../shared/data/mnist-10k (8,000 train / 2,000 test, official
file names), so the MNIST net's accuracy is measured on those 2,000 test digits.

Everything is fixed: seed, data order (one seeded generator per net), deterministic algorithms,
thread count, schedule. On the same CPU and torch build a rerun writes byte-identical files (the
safetensors header is written with sorted keys for this). The script prints each file's SHA-256
and test accuracy; put them into BUNDLED_SHA256 in src/ganland/metrics/cnn.py and into
docs/feature-nets.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save

import ganland
from ganland.data import DATASETS, to_model_range
from ganland.metrics.cnn import ClassifierCNN

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    """How one feature network is trained."""

    name: str  # registry name, also the file name (<name>.safetensors)
    dataset: str  # name in ganland.data.DATASETS
    root_arg: str  # the command-line option holding the dataset folder
    epochs: int  # passes over the training split
    batch_size: int = 128  # images per optimizer step
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule (AdamW)
    weight_decay: float = 5e-4  # AdamW decoupled weight decay
    warmup: float = 0.2  # fraction of the steps spent raising the learning rate to its peak
    shift: int = 2  # augmentation: random translation by up to this many pixels each way; 0 = none


RECIPES = {
    "fashion-mnist-cnn": Recipe("fashion-mnist-cnn", "fashion-mnist", "fashion_root", epochs=10),
    "mnist-cnn": Recipe("mnist-cnn", "mnist", "mnist_root", epochs=15),
}


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 images (B, 1, H, W), each moved by its own random (dy, dx) in [-s, s]², zero-filled."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)[:, 0]  # (B, H + 2s, W + 2s); 0 is the background of both datasets
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (B, 1, W)
    return padded[torch.arange(b)[:, None, None], rows, cols].unsqueeze(1)  # (B, 1, H, W)


@torch.no_grad()
def accuracy(model: ClassifierCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of `model` (eval mode) on uint8 images x (N, 1, 28, 28) with labels y (N,)."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        _, logits = model(to_model_range(x[i:i + batch_size]))
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return correct / len(x)


def train(recipe: Recipe, root: str, seed: int) -> tuple[ClassifierCNN, dict]:
    """Train one network from scratch; returns it (eval mode) and its metadata."""
    load = DATASETS.get(recipe.dataset)
    train_set = load(split="train", root=root, download=False)
    test_set = load(split="test", root=root, download=False)
    torch.manual_seed(seed)  # the initial weights and dropout masks
    generator = torch.Generator().manual_seed(seed)  # data order and augmentation
    model = ClassifierCNN(n_classes=train_set.n_classes)
    steps_per_epoch = -(-len(train_set) // recipe.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch,
                                                   pct_start=recipe.warmup)
    print(f"{recipe.name}: {len(train_set)} train / {len(test_set)} test images from {root}, "
          f"{recipe.epochs} epochs of {steps_per_epoch} steps", flush=True)
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=generator)
        total = 0.0
        for i in range(0, len(train_set), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            x = to_model_range(random_shift(train_set.x[idx], recipe.shift, generator))  # (B, 1, 28, 28)
            _, logits = model(x)
            loss = F.cross_entropy(logits, train_set.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * len(idx)
        print(f"  epoch {epoch + 1:2d}/{recipe.epochs}: train loss {total / len(train_set):.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    test_acc = accuracy(model, test_set.x, test_set.y)
    seconds = time.perf_counter() - start
    meta = {
        "net": recipe.name,
        "dataset": recipe.dataset,
        "train_images": str(len(train_set)),
        "test_images": str(len(test_set)),
        "epochs": str(recipe.epochs),
        "batch_size": str(recipe.batch_size),
        "optimizer": f"AdamW lr {recipe.lr} (one-cycle, warmup {recipe.warmup}), weight decay {recipe.weight_decay}",
        "augmentation": f"random shift up to {recipe.shift} px" if recipe.shift else "none",
        "test_accuracy": f"{test_acc:.4f}",
        "seed": str(seed),
        "ganland_version": ganland.__version__,
        "torch_version": torch.__version__,
    }
    return model.eval(), {"meta": meta, "seconds": seconds, "test_accuracy": test_acc}


def canonical_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file as bytes, with its JSON header written with sorted keys.

    safetensors' own writer orders the metadata keys differently from run to run, which would
    change the file's hash without changing its content; the tensor layout is kept as written.
    """
    blob = save(tensors, metadata=metadata)
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces to 8-byte alignment
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


def write_weights(model: ClassifierCNN, meta: dict[str, str], path: Path) -> str:
    """Write the state dict to `path`, check that it reads back identically; returns its SHA-256."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    data = canonical_safetensors(state, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    back = load_file(str(path))
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state), path
    return hashlib.sha256(data).hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES),
                        help="which networks to train (default: both)")
    parser.add_argument("--fashion-root", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the four Fashion-MNIST IDX files")
    parser.add_argument("--mnist-root", default=str(REPO / ".." / "shared" / "data" / "mnist-10k"),
                        help="folder with the 10k MNIST subset (default: ../shared/data/mnist-10k next to the repo)")
    parser.add_argument("--out", default=str(REPO / "src" / "ganland" / "metrics" / "weights"),
                        help="folder the .safetensors files are written to")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, data order and augmentation")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads; the weights depend on it (1: the same on any machine, and robust to a busy CPU)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs (for quick trials)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    results = {}
    for name in args.nets:
        recipe = RECIPES[name]
        if args.epochs is not None:
            recipe = Recipe(**{**recipe.__dict__, "epochs": args.epochs})
        model, info = train(recipe, str(Path(getattr(args, recipe.root_arg)).resolve()), args.seed)
        path = Path(args.out) / f"{name}.safetensors"
        sha = write_weights(model, info["meta"], path)
        results[name] = (sha, info)
        print(f"{name}: test accuracy {info['test_accuracy']:.4f}, trained in {info['seconds']:.0f} s, "
              f"wrote {path} ({path.stat().st_size} bytes), SHA-256 {sha}", flush=True)

    print("\nBUNDLED_SHA256 for src/ganland/metrics/cnn.py:")
    for name, (sha, info) in results.items():
        print(f'    "{name}": "{sha}",  # test accuracy {info["test_accuracy"]:.4f}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
