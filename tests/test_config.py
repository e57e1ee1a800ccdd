"""Strict configuration: unknown keys, wrong types, overrides, YAML floats, ranges, options."""
import pytest

from ganland.build import build_models, check_config
from ganland.config import Config, load_config, parse_override, recipe_names, yaml_load
from ganland.errors import ConfigError


def test_defaults_are_valid():
    cfg = load_config()
    assert isinstance(cfg, Config) and cfg.train.batch_size == 64


def test_unknown_key_names_the_key_and_a_close_match():
    with pytest.raises(ConfigError, match=r"train\.bach_size.*Did you mean \"batch_size\""):
        load_config(None, {"train.bach_size": 128})
    with pytest.raises(ConfigError, match=r"unknown key 'optimiser' in config.*Did you mean \"optim\""):
        load_config({"optimiser": {}})


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected int"):
        load_config(None, {"train.batch_size": "big"})
    with pytest.raises(ConfigError, match=r"optim\.G\.betas: expected list of 2 float"):
        load_config(None, {"optim.G.betas": [0.5]})
    with pytest.raises(ConfigError, match=r"train\.steps: expected int"):
        load_config(None, {"train.steps": 10.5})
    with pytest.raises(ConfigError, match=r"model\.conditional: expected bool"):
        load_config(None, {"model.conditional": "yes please"})


def test_lenient_only_where_harmless():
    cfg = load_config(None, {"optim.D.lr": 1, "train.steps": 1000.0, "optim.G.betas": [0, 0.9]})
    assert cfg.optim.D.lr == 1.0 and isinstance(cfg.optim.D.lr, float)
    assert cfg.train.steps == 1000 and isinstance(cfg.train.steps, int)
    assert cfg.optim.G.betas == (0.0, 0.9)


def test_yaml_reads_exponent_floats():
    assert yaml_load("lr: 2e-4")["lr"] == 2e-4
    assert yaml_load("a: 1E3\nb: .5\nc: 1.0e-5")["a"] == 1000.0
    assert parse_override("optim.D.lr=1e-4") == ("optim.D.lr", 1e-4)
    assert parse_override("model.options={g_width: 32}") == ("model.options", {"g_width": 32})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("optim.D.lr")


def test_ranges():
    for key, value, pattern in [("train.batch_size", 0, "at least 1"), ("train.steps", -5, "positive"),
                                ("optim.D.lr", 0.0, "positive"), ("train.ema", 1.5, "between 0 and 1"),
                                ("model.z_prior", "gauss", "normal"), ("optim.G.betas", [0.5, 1.0], r"\[0, 1\)"),
                                ("optim.D.weight_clip", -0.01, "positive"), ("optim.G.decay", "cosine", "linear")]:
        with pytest.raises(ConfigError, match=pattern):
            load_config(None, {key: value})


def test_unknown_recipe_suggests_a_close_one():
    with pytest.raises(ConfigError, match='Did you mean "fashion-dcgan"'):
        load_config("fashion-dcgn")


def test_every_recipe_parses():
    names = recipe_names()
    assert {"gaussian-1d", "sine", "ring", "grid", "mnist-dcgan", "fashion-cgan", "fashion-dcgan", "fashion-wgan",
            "fashion-wgan-gp"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.recipe == name and cfg.description


def test_yaml_round_trip(tmp_path):
    cfg = load_config("fashion-wgan-gp")
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(str(path)) == cfg


def test_model_options_are_checked_against_the_family():
    cfg = load_config(None, {"model.options": {"g_widht": 8}})
    with pytest.raises(ConfigError, match=r"model\.options\.g_widht.*Did you mean \"g_width\""):
        build_models(cfg, (1, 28, 28), 0)
    cfg = load_config(None, {"model.options": {"g_width": "wide"}})
    with pytest.raises(ConfigError, match=r"model\.options\.g_width: expected int"):
        build_models(cfg, (1, 28, 28), 0)


def test_impossible_combinations(fake_mnist):
    base = {"data.root": str(fake_mnist), "data.name": "mnist"}
    with pytest.raises(ConfigError, match="Lipschitz"):
        check_config(load_config(None, {**base, "loss.name": "wasserstein"}))
    with pytest.raises(ConfigError, match="batch norm"):
        check_config(load_config(None, {**base, "loss.name": "wasserstein", "loss.gp_weight": 10.0}))
    with pytest.raises(ConfigError, match="no class labels"):
        check_config(load_config(None, {"data.name": "ring", "model.name": "mlp", "model.conditional": True}))
    with pytest.raises(ConfigError, match="does not apply"):
        check_config(load_config(None, {"data.name": "ring", "model.name": "mlp", "data.image_size": 32}))
    with pytest.raises(ConfigError, match=r"data\.options\.stdd.*Did you mean \"std\""):
        check_config(load_config(None, {"data.name": "ring", "model.name": "mlp", "data.options": {"stdd": 1}}))
    with pytest.raises(ConfigError, match='Did you mean "hinge"'):
        check_config(load_config(None, {**base, "loss.name": "hinje"}))
