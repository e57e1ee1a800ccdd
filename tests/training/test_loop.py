"""The training loop end to end on tiny models: run folder contents, resume, stopping rules."""
import json

import numpy as np
import pytest
import torch

import ganland
from ganland.config import load_config
from ganland.errors import CheckpointError, ConfigError
from ganland.training.checkpoint import list_checkpoints, load_checkpoint
from ganland.training.loop import Trainer
from ganland.training.runs import resume, train

TINY_IMAGES = {
    "data.name": "mnist", "model.name": "dcgan", "model.z_dim": 8,
    "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 16, "train.log_every": 2,
    "train.sample_every": 4, "train.checkpoint_every": 3, "train.progress": False, "train.heldout_batches": 2,
}


def tiny(fake_mnist, **extra):
    return load_config(None, {**TINY_IMAGES, "data.root": str(fake_mnist), **extra})


def read_stats(run):
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


@pytest.mark.e2e
def test_run_folder_has_everything(fake_mnist, tmp_path):
    # 256 training images / 16 = 16 batches per epoch: 20 steps cross one epoch boundary.
    result = train(tiny(fake_mnist, **{"train.steps": 20, "train.ema": 0.9}), str(tmp_path / "run"))
    run = result.run_dir
    assert (run / "config.yaml").is_file()
    assert load_config(str(run / "config.yaml")).train.steps == 20
    stats = read_stats(run)
    train_rows = [r for r in stats if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == list(range(2, 21, 2))
    for key in ("loss_D", "loss_G", "D_real", "D_fake", "real_logit", "fake_logit", "grad_norm_D", "grad_norm_G"):
        assert all(np.isfinite(r[key]) for r in train_rows), key
    [setup] = [r for r in stats if r["kind"] == "setup"]  # the speed choice, at the start
    assert setup["step"] == 0 and setup["speed_source"] == "short run" and setup["amp"] == "fp32"
    epochs = [r for r in stats if r["kind"] == "epoch"]
    assert len(epochs) == 1 and epochs[0]["epoch"] == 1
    for key in ("heldout_loss_D_real", "train_loss_D_real", "epoch_loss_D", "epoch_loss_G"):
        assert np.isfinite(epochs[0][key])
    pngs = sorted(p.name for p in (run / "samples").iterdir())
    assert pngs == ["latest.png", "step_000000004.png", "step_000000008.png", "step_000000012.png",
                    "step_000000016.png", "step_000000020.png", "training.png"]
    ckpts = list_checkpoints(run)
    assert [p.name for p in ckpts] == ["step_000000020.pt", "step_000000018.pt"]  # newest 2 kept
    ck = load_checkpoint(ckpts[0])
    assert load_config(__import__("yaml").safe_load(ck["config_yaml"])).model.z_dim == 8  # carries its config
    assert ck["G_ema"] is not None and result.samples == run / "samples" / "latest.png"


def _final_state(run):
    ck = load_checkpoint(list_checkpoints(run)[0])
    return ck["G"], ck["D"], ck["opt_D"]["state"]


MODERN = {"model.name": "resnet", "model.options": {"g_width": 4, "d_width": 4}, "model.spectral_norm": True,
          "loss.name": "rpgan", "loss.r1_weight": 1.0, "loss.r2_weight": 1.0, "train.augment": "default",
          "train.augment_target": 0.6, "train.augment_kimg": 0.2, "train.ema": 0.9}


@pytest.mark.parametrize("extra", [
    {}, {"train.n_critic": 2, "optim.D.weight_clip": 0.05, "loss.name": "wasserstein"},
    MODERN,  # ResNet, spectral norm, RpGAN + R1 + R2, adaptive augmentation
    {"train.augment": "translation,cutout", "train.augment_p": 0.5, "loss.cr_weight": 2.0, "loss.name": "hinge",
     "speed.reuse_fake": False},
], ids=["dcgan", "wgan-n_critic-2", "resnet-rpgan-ada", "fixed-augmentation-cr"])
@pytest.mark.e2e
def test_resume_continues_exactly(fake_mnist, tmp_path, extra):
    cfg = tiny(fake_mnist, **{"train.steps": 21, **extra})
    full = train(cfg, str(tmp_path / "full")).run_dir

    # The same run, stopped at step 9 (mid-epoch) and resumed to 21.
    part = train(tiny(fake_mnist, **{"train.steps": 9, **extra}), str(tmp_path / "part")).run_dir
    resume(part, {"train.steps": 21})

    a, b = read_stats(full), read_stats(part)
    drop = ("seconds",)  # wall-clock differs; everything else must be identical, bit for bit
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == \
        [{k: v for k, v in r.items() if k not in drop} for r in b]
    for x, y in zip(_final_state(full)[:2], _final_state(part)[:2]):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    s_full = ganland.sample(full, n=8, seed=3)["images"]
    s_part = ganland.sample(part, n=8, seed=3)["images"]
    assert np.array_equal(s_full, s_part)


@pytest.mark.e2e
def test_same_seed_same_run_different_seed_different_run(fake_mnist, tmp_path):
    runs = [train(tiny(fake_mnist, **{"train.steps": 4, "train.seed": s}), str(tmp_path / f"r{i}")).run_dir
            for i, s in enumerate((0, 0, 1))]
    losses = [[r["loss_D"] for r in read_stats(run) if r["kind"] == "train"] for run in runs]
    assert losses[0] == losses[1] and losses[0] != losses[2]


@pytest.mark.e2e
def test_stopping_rules(fake_mnist, tmp_path):
    r = train(tiny(fake_mnist, **{"train.epochs": 1.5, "train.n_critic": 2}), str(tmp_path / "e"))
    assert r.epoch == pytest.approx(1.5)  # 16 batches per epoch, 2 per G step: 12 G steps
    assert r.step == 12
    r = train(tiny(fake_mnist, **{"train.minutes": 0.001}), str(tmp_path / "m"))
    assert r.step >= 1 and r.seconds < 30
    with pytest.raises(ConfigError, match="no stopping rule"):
        train(tiny(fake_mnist), str(tmp_path / "none"))


@pytest.mark.e2e
def test_refuses_to_overwrite_a_run_and_resume_errors(fake_mnist, tmp_path):
    run = train(tiny(fake_mnist, **{"train.steps": 2}), str(tmp_path / "run")).run_dir
    with pytest.raises(ConfigError, match="already exists"):
        train(tiny(fake_mnist, **{"train.steps": 2}), str(run))
    with pytest.raises(ConfigError, match="cannot change model.z_dim: 8 -> 4 when resuming"):
        resume(run, {"model.z_dim": 4})
    # Restating a value unchanged is fine, and so is any speed setting.
    assert resume(run, {"model.z_dim": 8, "speed.threads": 1, "speed.reuse_fake": False, "train.steps": 4}).step == 4
    assert load_config(str(run / "config.yaml")).speed.threads == 1  # config.yaml is what this process ran with
    with pytest.raises(CheckpointError, match="no such run folder"):
        resume(tmp_path / "nope")


@pytest.mark.e2e
def test_conditional_run_and_sampling(fake_mnist, tmp_path):
    cfg = tiny(fake_mnist, **{"train.steps": 3, "model.conditional": True, "model.options.cond": "projection"})
    run = train(cfg, str(tmp_path / "c")).run_dir
    model = ganland.load(run)
    out = model.sample(20, seed=0)
    assert out["images"].shape == (20, 28, 28, 1) and out["images"].dtype == np.uint8
    assert out["labels"].tolist() == [i % 10 for i in range(20)]
    only_3 = model.sample(5, classes=3)
    assert (only_3["labels"] == 3).all()
    with pytest.raises(ConfigError, match="out of range"):
        model.sample(2, classes=10)
    # the auxiliary classifier on the projection scores reaches the loop and is logged
    ac = train(tiny(fake_mnist, **{"train.steps": 2, "train.log_every": 1, "model.conditional": True,
                                   "model.options.cond": "projection", "loss.ac_weight": 1.0}), str(tmp_path / "ac"))
    logged = [r for r in read_stats(ac.run_dir) if r.get("kind") == "train"]
    assert logged and all(r["ac_D"] > 0 and r["ac_G"] > 0 for r in logged)


@pytest.mark.e2e
def test_vector_runs_write_their_plots(tmp_path):
    for name in ("gaussian-1d", "ring", "sine"):
        cfg = load_config(name, {"train.steps": 3, "train.progress": False, "train.batch_size": 8,
                                 "train.heldout_batches": 1})
        r = train(cfg, str(tmp_path / name))
        assert r.samples.stat().st_size > 5000, name  # a real picture, not an empty file
        x = ganland.sample(r.run_dir, n=7)["samples"]
        assert x.shape == (7, {"gaussian-1d": 1, "ring": 2, "sine": 10}[name]) and x.dtype == np.float32


def test_heldout_report_only_for_finite_data(fake_mnist, tmp_path):
    # A sampler draws every batch fresh: no training set to overfit, no held-out split.
    toy = Trainer(load_config("ring", {"train.steps": 1, "train.progress": False}), tmp_path / "t")
    assert toy.heldout_report() == {}
    images = Trainer(tiny(fake_mnist, **{"train.steps": 1}), tmp_path / "i").heldout_report()
    assert set(images) == {"heldout_loss_D_real", "train_loss_D_real"}
    assert images["heldout_loss_D_real"] != images["train_loss_D_real"]


def test_trainer_generate_is_deterministic(fake_mnist, tmp_path):
    tr = Trainer(tiny(fake_mnist, **{"train.steps": 1}), tmp_path / "t")
    z = torch.randn(4, 8)
    assert torch.equal(tr.generate(z, None), tr.generate(z, None))


@pytest.mark.e2e
def test_rgb_image_folder_at_32_px(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(24):
            Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    cfg = load_config(None, {"data.name": "image-folder", "data.root": str(tmp_path / "imgs"), "data.image_size": 32,
                             "model.z_dim": 8, "model.conditional": True,
                             "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 8,
                             "train.steps": 3, "train.progress": False, "train.heldout_batches": 1})
    run = train(cfg, str(tmp_path / "run")).run_dir
    out = ganland.sample(run, n=4)
    assert out["images"].shape == (4, 32, 32, 3) and out["labels"].tolist() == [0, 1, 0, 1]
