"""The ResNet recipes train for real on small local data: CIFAR-10 from a synthetic archive in the
official format, an image folder at 64 px, Fashion-MNIST files at 1,000-image scale (per_class)."""
import numpy as np
import pytest

import ganland
from ganland.build import build_dataset
from ganland.config import load_config
from ganland.errors import ConfigError
from ganland.training.runs import train

from data.test_images import cifar_batches, write_cifar_archive

SMALL = {"model.options.g_width": 4, "model.options.d_width": 4, "train.batch_size": 8, "train.steps": 2,
         "train.progress": False, "train.heldout_batches": 1, "train.sample_every": 0}


def small(recipe, **extra):
    cfg = load_config(recipe, {**SMALL, **extra})
    return cfg


@pytest.mark.e2e
def test_cifar_sngan_trains_on_a_synthetic_archive(tmp_path):
    """Nothing here has seen the real CIFAR-10 (it cannot be downloaded on the build machines): the
    recipe's whole path (archive, 32 px RGB ResNet, n_critic 5, EMA, linear decay) runs on its format."""
    root = tmp_path / "cifar"
    write_cifar_archive(root / "cifar-10-binary.tar.gz", cifar_batches(per_batch=8, n_test=8))
    cfg = small("cifar-sngan", **{"data.root": str(root), "data.download": False, "eval.every": 0})
    result = train(cfg, str(tmp_path / "run"))
    assert result.step == 2 and result.checkpoint.is_file()
    assert ganland.sample(result.run_dir, n=3)["images"].shape == (3, 32, 32, 3)


@pytest.mark.e2e
def test_folder_sngan_trains_on_64px_images_with_adaptive_augmentation(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (70, 80, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    cfg = small("folder-sngan", **{"data.root": str(tmp_path / "imgs"), "model.options.attention": 32})
    result = train(cfg, str(tmp_path / "run"))
    assert result.step == 2
    assert ganland.sample(result.run_dir, n=2)["images"].shape == (2, 64, 64, 3)


def test_per_class_keeps_the_first_images_of_each_class_of_the_training_split(fake_mnist):
    whole = build_dataset(load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist)}), "train")
    cfg = load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist), "data.options.per_class": 3})
    part, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert len(part) == 30 and np.bincount(part.y.numpy()).tolist() == [3] * 10
    for k in range(10):  # the first three of class k, in file order
        first = np.flatnonzero(whole.y.numpy() == k)[:3]
        assert np.array_equal(part.x[part.y == k].numpy(), whole.x[first].numpy())
    assert len(test) == 64  # the test split stays whole: scores keep their reference
    with pytest.raises(ConfigError, match="per_class=1000.*give at most 25"):
        build_dataset(load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist),
                                         "data.options.per_class": 1000}), "train")


def test_fashion_recipes_check(fake_mnist):
    from ganland.build import check_config

    check_config(load_config("fashion-sngan", {"data.root": str(fake_mnist)}))
    check_config(load_config("fashion-small-ada", {"data.root": str(fake_mnist), "data.options.per_class": 7}))
    check_config(load_config("fashion-dcgan-cond", {"data.root": str(fake_mnist)}))
