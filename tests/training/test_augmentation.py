"""train.augment in the training step and loop: what D sees, the adaptive probability, the settings."""
import json

import pytest
import torch

from ganland.build import build_models, build_optimizer, check_config
from ganland.config import load_config
from ganland.errors import ConfigError
from ganland.losses import LOSSES
from ganland.training.augmentation import Augmenter
from ganland.training.checkpoint import list_checkpoints, load_checkpoint
from ganland.training.distributed import World
from ganland.training.runs import train
from ganland.training.step import StepSettings, d_step

from .test_loop import tiny


def _d_loss(augmenter, seed=0):
    """D's loss of one step on fixed data and weights, with `augmenter` (or none)."""
    torch.manual_seed(seed)
    cfg = load_config(None, {"model.name": "dcgan", "model.z_dim": 4, "model.options": {"g_width": 4, "d_width": 4}})
    G, D = build_models(cfg, (1, 28, 28), 0)
    s = StepSettings(LOSSES.get("non-saturating"), cfg.optim.G, cfg.optim.D, augment=augmenter)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    return d_step(G, D, build_optimizer(D, cfg.optim.D), s, x, None, z, None, torch.Generator().manual_seed(3))["loss_D"]


def test_D_sees_augmented_images_and_p_0_changes_nothing():
    plain = _d_loss(None)
    assert torch.equal(_d_loss(Augmenter(("translation", "cutout"), 0.0, None, World.single())), plain)
    assert not torch.equal(_d_loss(Augmenter(("translation", "cutout"), 1.0, None, World.single())), plain)


@pytest.mark.e2e
def test_adaptive_probability_moves_is_logged_and_saved(fake_mnist, tmp_path):
    cfg = tiny(fake_mnist, **{"train.steps": 24, "train.augment": "default", "train.augment_target": 0.1,
                              "train.augment_kimg": 0.1})  # 64 images per adjustment move p by 0.64
    run = train(cfg, str(tmp_path / "run")).run_dir
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("kind") == "train"]
    p = [r["aug_p"] for r in rows]
    assert all(0 <= v <= 1 for v in p) and len(set(p)) > 1  # it moved
    assert all(-1 <= r["aug_rt"] <= 1 for r in rows if "aug_rt" in r) and any("aug_rt" in r for r in rows)
    state = load_checkpoint(list_checkpoints(run)[0])["augment"]
    assert 0 <= state["p"] <= 1 and state["ada"]["p"] == state["p"] and state["ada"]["rt"] is not None


@pytest.mark.parametrize("overrides,message", [
    ({"data.name": "ring", "model.name": "mlp", "train.augment": "default"}, "train.augment transforms images"),
    ({"data.name": "ring", "model.name": "mlp", "loss.cr_weight": 1.0}, "loss.cr_weight transforms images"),
    ({"train.augment": "translaton"}, "train.augment='translaton'.*translation"),
    ({"train.augment": "color"}, "train.augment='color'"),  # saturation needs colour images
    ({"train.augment_target": 0.6}, "train.augment is off"),
    ({"train.augment": "default", "train.augment_target": 0.6, "train.augment_p": 0.5}, "adaptive"),
    ({"train.augment": "default", "train.augment_p": 1.5}, "probability"),
])
def test_augmentation_settings_are_checked(fake_mnist, overrides, message):
    base = {"data.root": str(fake_mnist), "train.steps": 1} if "data.name" not in overrides else {"train.steps": 1}
    with pytest.raises(ConfigError, match=message):
        cfg = load_config(None, {"data.name": "mnist", "model.name": "dcgan", **base, **overrides})
        check_config(cfg)
