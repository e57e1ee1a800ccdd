"""Image-to-image runs end to end on tiny models: training with L1 + adversarial or L1 alone, an
exact resume (the random holes come from the checkpointed data stream), evaluation with PSNR,
SSIM and FID, the pictures, the report, and `ganland translate` on a user's images."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganland
from ganland.build import check_config
from ganland.cli import main
from ganland.config import load_config
from ganland.errors import ConfigError
from ganland.evaluation import compare, evaluate_real, evaluate_run
from ganland.training.checkpoint import list_checkpoints, load_checkpoint
from ganland.training.runs import resume, train
from ganland.training.step import StepSettings, g_step
from ganland.losses import LOSSES

PAIRED = {"data.name": "mnist", "data.degrade": "mask", "data.degrade_options": {"shape": "strokes"},
          "model.name": "unet", "model.z_dim": 4, "model.options": {"g_width": 4, "d_width": 4},
          "loss.l1_weight": 10.0, "train.batch_size": 16, "train.log_every": 2, "train.sample_every": 4,
          "train.checkpoint_every": 3, "train.progress": False, "train.heldout_batches": 2}


def paired(root, **extra):
    return load_config(None, {**PAIRED, "data.root": str(root), **extra})


def rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "stats.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("extra", [{}, {"loss.adv_weight": 0.0, "data.degrade": "noise", "data.degrade_options": {}},
                                   {"data.degrade": "downsample", "data.degrade_options": {"factor": 2},
                                    "speed.reuse_fake": False, "train.ema": 0.9}],
                         ids=["gan-strokes", "l1-only-noise", "gan-sr2-ema"])
@pytest.mark.e2e
def test_resume_continues_exactly(fake_mnist, tmp_path, extra):
    full = train(paired(fake_mnist, **{"train.steps": 19, **extra}), str(tmp_path / "full")).run_dir
    part = train(paired(fake_mnist, **{"train.steps": 7, **extra}), str(tmp_path / "part")).run_dir
    resume(part, {"train.steps": 19})  # 16 batches an epoch: the resumed stretch crosses an epoch's end
    assert rows(full) == rows(part)
    a, b = (load_checkpoint(list_checkpoints(r)[0]) for r in (full, part))
    for key in ("G", "D"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    records = [r for r in rows(full) if r["kind"] == "train"]
    assert all("l1" in r for r in records)
    if extra.get("loss.adv_weight") == 0.0:  # no D at all: nothing of it is logged, its optimizer never stepped
        assert not any("loss_D" in r for r in records) and not a["opt_D"]["state"]
        assert "heldout_loss_D_real" not in [r for r in rows(full) if r["kind"] == "epoch"][0]
    else:
        assert all("adv_G" in r and "loss_D" in r for r in records)
        assert "heldout_loss_D_real" in [r for r in rows(full) if r["kind"] == "epoch"][0]
    assert a["data_info"]["cond_shape"] == [1 + (extra.get("data.degrade", "mask") == "mask"), 28, 28]


@pytest.mark.e2e
def test_scores_pictures_report_and_translate(fake_mnist, tmp_path, capsys):
    run = train(paired(fake_mnist, **{"train.steps": 4, "eval.every": 4, "eval.n_samples": 40,
                                      "data.degrade": "downsample", "data.degrade_options": {"factor": 4}}),
                str(tmp_path / "run")).run_dir
    inline = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert inline["protocol"]["evaluator"] == "restoration"
    assert inline["protocol"]["dataset"] == "mnist+downsample(factor=4)"
    score = evaluate_run(run)  # the run's own protocol: the same 40 fixed inputs, so the same numbers
    assert score.metrics["psnr"] == pytest.approx(inline["metrics"]["psnr"])
    assert score.metrics["fid"] == pytest.approx(inline["metrics"]["fid"], rel=1e-6)
    assert 0 < score.metrics["ssim"] <= 1 and np.isfinite(score.metrics["psnr"])
    baseline = evaluate_real(load_config(str(run / "config.yaml")), n=40, seed=0)  # the bicubic upsampling
    assert baseline.source == "the inputs themselves (bicubic upsampling)"
    compare([score, baseline])  # one protocol
    other = evaluate_run(train(paired(fake_mnist, **{"train.steps": 1, "data.degrade": "noise",
                                                     "data.degrade_options": {}}), str(tmp_path / "noise")).run_dir,
                         n=40, record=False)
    with pytest.raises(ConfigError, match="protocols differ.*dataset"):
        compare([score, other])

    picture = np.asarray(Image.open(run / "samples" / "latest.png"))
    cells = lambda k: 2 * (k * (28 + 2) + 2)  # noqa: E731  (28 px cells, 2 px gaps, drawn twice as large)
    assert picture.shape[:2] == (cells(6) + 22, cells(10))  # six rows of ten under a title: input, output, truth, twice
    assert main(["report", str(run)]) == 0
    assert "In each block of three rows: the inputs (downsample(factor=4))" in (run / "report.html").read_text()

    model = ganland.load(run)
    assert model.paired and model.cond_shape == (1, 28, 28)
    with pytest.raises(ConfigError, match="image-to-image model.*ganland translate"):
        model.sample(4)
    # translate: low-resolution inputs (7 px) come out 4x larger; a folder keeps the names.
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((7, 5 + 0 * i, 1), 40 * i, np.uint8)[..., 0]).save(folder / f"im{i}.png")
    capsys.readouterr()
    assert main(["translate", str(run), "--input", str(folder), "--out", str(tmp_path / "out")]) == 0
    assert "wrote 3 restored images" in capsys.readouterr().out
    assert Image.open(tmp_path / "out" / "im1.png").size == (20, 28) and (tmp_path / "out" / "comparison.png").is_file()
    # Clean images with --degrade go through the training degradation first: same size out.
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "clean.png")
    assert main(["translate", str(run), "--input", str(tmp_path / "clean.png"), "--out", str(tmp_path / "o2"),
                 "--degrade"]) == 0
    assert Image.open(tmp_path / "o2" / "clean.png").size == (28, 28)
    Image.fromarray(np.zeros((30, 28), np.uint8)).save(tmp_path / "odd.png")
    assert main(["translate", str(run), "--input", str(tmp_path / "odd.png"), "--out", str(tmp_path / "o3"),
                 "--degrade"]) == 2
    assert "multiples of 4 px; got 30x28" in capsys.readouterr().err
    assert main(["translate", str(run), "--input", str(tmp_path / "clean.png"), "--out", str(tmp_path / "o3"),
                 "--mask", str(tmp_path / "clean.png")]) == 2
    assert "masks are for inpainting models" in capsys.readouterr().err


@pytest.mark.e2e
def test_translate_inpaints_the_masked_pixels_only_and_refuses_noise_models(fake_mnist, tmp_path, capsys):
    run = train(paired(fake_mnist, **{"train.steps": 2, "data.degrade_options": {}}), str(tmp_path / "run")).run_dir
    image = np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)
    mask = np.zeros((28, 28), np.uint8)
    mask[4:12, 6:20] = 255
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert main(["translate", str(run), "--input", str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]) == 2
    assert "needs to know which pixels are missing" in capsys.readouterr().err
    assert main(["translate", str(run), "--input", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png"),
                 "--out", str(tmp_path / "out")]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert np.array_equal(out[mask == 0], image[mask == 0])  # known pixels pasted back exactly
    noise_run = train(load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist), "model.z_dim": 4,
                                         "model.options": {"g_width": 4, "d_width": 4}, "train.steps": 1,
                                         "train.batch_size": 16, "train.progress": False}),
                      str(tmp_path / "plain")).run_dir
    assert main(["translate", str(noise_run), "--input", str(tmp_path / "a.png"), "--out", str(tmp_path / "x")]) == 2
    assert "makes images from noise" in capsys.readouterr().err


@pytest.mark.parametrize("overrides,message", [
    ({"loss.l1_weight": 0.0, "loss.adv_weight": 0.0}, "nothing to learn from"),
    ({"train.augment": "translation"}, "Turn it off for data.degrade runs"),
    ({"loss.cr_weight": 1.0}, "Turn it off for data.degrade runs"),
    ({"model.name": "dcgan", "model.options": {}}, "set model.name=unet"),
    ({"model.conditional": True}, "model.conditional=false"),
    ({"data.degrade": "none", "data.degrade_options": {}}, "set data.degrade"),
])
def test_paired_settings_are_checked(fake_mnist, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(paired(fake_mnist, **overrides))


def test_l1_settings_need_a_paired_run(fake_mnist):
    plain = {"data.name": "mnist", "data.root": str(fake_mnist), "model.options": {"g_width": 4, "d_width": 4}}
    for key, value in (("loss.l1_weight", 1.0), ("loss.adv_weight", 0.0)):
        with pytest.raises(ConfigError, match="applies to image-to-image runs"):
            check_config(load_config(None, {**plain, key: value}))


def test_g_step_objective_is_weighted_adversarial_plus_l1():
    from ganland.config import OptimizerConfig
    from ganland.models import MODELS

    torch.manual_seed(0)
    G, D = MODELS.get("unet")((1, 8, 8), 4, 0, (1, 8, 8), g_width=4, d_width=4, d_layers=1)
    c, x_real = torch.rand(4, 1, 8, 8) * 2 - 1, torch.rand(4, 1, 8, 8) * 2 - 1
    opt = torch.optim.SGD(G.parameters(), lr=0.0)  # no update: the loss alone is checked
    loss = LOSSES.get("non-saturating")
    s = StepSettings(loss, OptimizerConfig(), OptimizerConfig(), l1_weight=5.0, adv_weight=0.5)
    out = g_step(G, D, opt, s, None, c, x_real=x_real, c_real=c)
    with torch.no_grad():
        fake = G(None, c)
        adv = loss.g_loss(D(fake, c), None)
        l1 = (fake - x_real).abs().mean()
    assert out["l1"].item() == pytest.approx(l1.item(), rel=1e-6)
    assert out["adv_G"].item() == pytest.approx(adv.item(), rel=1e-6)
    assert out["loss_G"].item() == pytest.approx(0.5 * adv.item() + 5.0 * l1.item(), rel=1e-6)
    before = [p.clone() for p in D.parameters()]
    only = StepSettings(loss, OptimizerConfig(), OptimizerConfig(), l1_weight=5.0, adv_weight=0.0)
    out = g_step(G, D, opt, only, None, c, x_real=x_real, c_real=c)
    assert set(out) == {"l1", "loss_G"} and out["loss_G"].item() == pytest.approx(5.0 * l1.item(), rel=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


@pytest.mark.e2e
def test_an_rgb_image_folder_becomes_paired_data(tmp_path):
    """Any image dataset ganland reads: here a folder of RGB photos at 32 px, 2x super-resolution,
    a U-Net of depth 3, hinge loss."""
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    cfg = load_config(None, {**PAIRED, "data.name": "image-folder", "data.root": str(tmp_path / "imgs"),
                             "data.image_size": 32, "data.degrade": "downsample", "data.degrade_options": {"factor": 2},
                             "loss.name": "hinge", "train.batch_size": 8, "train.steps": 2,
                             "train.heldout_batches": 1})
    run = train(cfg, str(tmp_path / "run")).run_dir
    model = ganland.load(run)
    assert model.cond_shape == (3, 32, 32) and model.G.depth == 3
    small = rng.integers(0, 255, (2, 16, 12, 3), dtype=np.uint8)
    assert model.translate(model.inputs(small)).shape == (2, 32, 24, 3)


@pytest.mark.parametrize("recipe", ["fashion-sr4", "fashion-inpaint"])
@pytest.mark.e2e
def test_the_recipes_train(fake_mnist, tmp_path, recipe):
    cfg = load_config(recipe, {"data.root": str(fake_mnist), "data.download": False,
                               "model.options": {"g_width": 4, "d_width": 4}, "train.batch_size": 16,
                               "train.steps": 2, "train.minutes": None, "train.progress": False,
                               "train.heldout_batches": 1})
    run = train(cfg, str(tmp_path / "run")).run_dir
    model = ganland.load(run)
    images = np.zeros((1, 28, 28, 1), np.uint8)
    assert model.translate(model.inputs(images, degrade=True)).shape == (1, 28, 28, 1)
