"""Strict configuration: unknown keys, wrong types, overrides, YAML floats, ranges, options, and
hostile input (docs/robustness.md), also property-based."""
import dataclasses
import string
import time
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganland.build import build_models, check_config
from ganland.config import Config, load_config, parse_override, recipe_names, yaml_load
from ganland.errors import ConfigError, GanlandError


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
    with pytest.raises(ConfigError, match=r"gradient penalty replaces weight clipping.*optim\.D\.weight_clip=null"):
        check_config(load_config(None, {"data.name": "ring", "model.name": "mlp", "loss.name": "wasserstein",
                                        "loss.gp_weight": 10.0, "optim.D.weight_clip": 0.01}))
    with pytest.raises(ConfigError, match="does not apply"):
        check_config(load_config(None, {"data.name": "ring", "model.name": "mlp", "data.image_size": 32}))
    with pytest.raises(ConfigError, match=r"data\.options\.stdd.*Did you mean \"std\""):
        check_config(load_config(None, {"data.name": "ring", "model.name": "mlp", "data.options": {"stdd": 1}}))
    with pytest.raises(ConfigError, match='Did you mean "hinge"'):
        check_config(load_config(None, {**base, "loss.name": "hinje"}))


# --- hostile configs (docs/robustness.md) --------------------------------------------------------


def test_negative_and_zero_sizes_name_the_key():
    for key, value in [("train.batch_size", -64), ("model.z_dim", 0), ("train.n_critic", -1),
                       ("train.log_every", 0), ("train.keep_checkpoints", 0), ("train.epochs", -1.5),
                       ("train.minutes", 0), ("data.image_size", -32), ("train.checkpoint_every", -1),
                       ("train.sample_every", -5), ("train.heldout_batches", -1), ("train.guard_retries", -1),
                       ("train.guard_saturation_steps", -3), ("loss.gp_weight", -10.0), ("loss.r1_weight", -1.0),
                       ("eval.every", -1), ("eval.n_samples", 1), ("speed.threads", -2)]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, {key: value})


def test_non_finite_numbers_are_refused():
    for key, text in [("optim.D.lr", ".nan"), ("optim.G.lr", ".inf"), ("train.minutes", ".inf"),
                      ("loss.gp_weight", "1e400"), ("optim.G.betas", "[0.5, .nan]")]:
        with pytest.raises(ConfigError, match=rf"{key.replace('.', r'[.]')}.* must be a finite number"):
            load_config(None, [f"{key}={text}"])


def test_settings_that_would_be_ignored_are_errors():
    with pytest.raises(ConfigError, match=r"optim\.G\.momentum applies to sgd and rmsprop"):
        load_config(None, {"optim.G.momentum": 0.9})
    with pytest.raises(ConfigError, match=r"optim\.D\.grad_clip_per_tensor .* set the norm limit"):
        load_config(None, {"optim.D.grad_clip_per_tensor": True})
    with pytest.raises(ConfigError, match=r"loss\.gp_target .* loss\.gp_weight is 0"):
        load_config(None, {"loss.gp_target": 0.0})
    with pytest.raises(ConfigError, match=r"train\.guard_saturation_steps is 5 but train\.guard is false.*"
                                          r"set train\.guard=true"):
        load_config(None, {"train.guard": False, "train.guard_saturation_steps": 5})
    cfg = load_config(None, {"train.guard": False})  # the guard's other settings keep their defaults
    assert cfg.train.guard is False


def test_conditional_model_on_unlabelled_image_folder(tmp_path):
    from PIL import Image

    for i in range(4):
        Image.new("L", (8, 8), 40 * i).save(tmp_path / f"{i}.png")
    cfg = load_config(None, {"data.name": "image-folder", "data.root": str(tmp_path), "data.image_size": 32,
                             "data.options": {"test_fraction": 0.0}, "model.conditional": True})
    with pytest.raises(ConfigError, match=r"model\.conditional is true but dataset 'image-folder' has no class "
                                          r"labels; set model\.conditional=false"):
        check_config(cfg)


def test_batch_larger_than_the_training_set_stops_before_anything_is_written(fake_mnist, tmp_path):
    from ganland.training.runs import train

    cfg = load_config(None, {"data.name": "mnist", "data.root": str(fake_mnist), "train.batch_size": 512,
                             "model.z_dim": 8, "model.options": {"g_width": 4, "d_width": 4}, "train.steps": 1})
    with pytest.raises(ConfigError, match="dataset 'mnist' holds 256 training samples, fewer than "
                                          "train.batch_size=512; lower the batch size"):
        train(cfg, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_anchors_are_copies_not_shared_sections(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("optim:\n  G: &adam {lr: 0.001, betas: [0.0, 0.99]}\n  D: *adam\n")
    cfg = load_config(str(path), ["optim.D.lr=0.1"])
    assert cfg.optim.D.lr == 0.1 and cfg.optim.G.lr == 0.001  # changing D's copy leaves G's alone
    assert cfg.optim.G.betas == cfg.optim.D.betas == (0.0, 0.99)


def test_yaml_bombs_and_self_references_are_refused(tmp_path):
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="more than 100000 values once its aliases"):
        load_config(None, ["model.options={" + ", ".join(laughs).replace(": &", ": &") + "}"])
    (tmp_path / "bomb.yaml").write_text("model:\n  options:\n" + "".join(f"    {line}\n" for line in laughs))
    with pytest.raises(ConfigError, match=r"bomb\.yaml: more than 100000 values"):
        load_config(str(tmp_path / "bomb.yaml"))
    assert time.perf_counter() - start < 5
    with pytest.raises(ConfigError, match="refers to a value containing itself"):
        load_config(None, ["model.options=&a {b: *a}"])
    with pytest.raises(ConfigError, match="not valid YAML"):
        yaml_load("[" * 10000 + "]" * 10000)


@pytest.mark.parametrize("text", ["._", "0b_", "0x_", "-0b_", "2001-02-30", "!!python/object:os.system x",
                                  "{a: 1, a: 2", "'unclosed", "- a\nb: c"])
def test_yaml_values_pyyaml_cannot_build_are_config_errors(text):
    with pytest.raises(ConfigError, match="override train.steps: not valid YAML"):
        load_config(None, [f"train.steps={text}"])


def test_unreadable_recipe_files_and_odd_arguments(tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"binary\.yaml"):
        load_config(str(tmp_path / "binary.yaml"))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(str(tmp_path / "list.yaml"))
    with pytest.raises(ConfigError, match="unknown recipe"):
        load_config("x" * 300)  # longer than a file name may be
    with pytest.raises(ConfigError, match="a recipe name, a YAML path or a mapping"):
        load_config(5)
    with pytest.raises(ConfigError, match="KEY=VALUE strings or a mapping"):
        load_config(None, "train.steps=5")
    with pytest.raises(ConfigError, match="override 5: expected a KEY=VALUE string"):
        load_config(None, [5])
    with pytest.raises(ConfigError, match="override keys are dotted strings"):
        load_config(None, {5: 1})
    with pytest.raises(ConfigError, match=r"train\.epochs: .* too large"):
        load_config(None, {"train.epochs": 10**400})
    with pytest.raises(ConfigError, match=r"train\.steps: .* out of range"):
        load_config(None, {"train.steps": 10**30})
    with pytest.raises(ConfigError, match=r"train\.steps: expected int or null, got <a list>"):
        load_config(None, {"train.steps": [10**5000]})  # too long to print in full: shortened, no crash


# Property-based: whatever the mapping or override text, load_config returns a Config or raises one
# of ganland's own errors (never another exception, never a hang).
SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
FIELDS = sorted({f.name for tp in typing.get_type_hints(Config).values() if dataclasses.is_dataclass(tp)
                 for f in dataclasses.fields(tp)} | {"G", "D"})
DOTTED = sorted({f"{s}.{f.name}" for s, tp in typing.get_type_hints(Config).items() if dataclasses.is_dataclass(tp)
                 for f in dataclasses.fields(tp)} | {f"optim.{n}.{f}" for n in "GD" for f in ("lr", "betas", "name")})
YAML_TOKENS = ["1", "-1", "0", "64", "2e-4", "1e400", ".nan", "-.inf", "null", "~", "true", "yes", "'x'", "._", "0b_",
               "0x1F", "2001-02-30", "2001-02-03", "[1, 2]", "[0.5, 0.9]", "{a: 1}", "&a [*a]", "*b", "!!set {a}",
               "!!binary AAAA", "!!python/name:os.system", "[", "{", ":", "- -", "|", "'", '"', "@", "`", "%", "1:20",
               "0o17", "+.5", "1_000", "1__.", "\t", "\x00", "\u2028", "a: b: c"]
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=8) | st.sampled_from(["adam", "sgd", "linear", "normal", "uniform", "mnist", "auto"]))
keys = st.sampled_from(sorted(SECTIONS) + FIELDS) | st.text(max_size=6) | st.integers(-2, 2) | st.none()
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3),
                      max_leaves=8)
sections = st.dictionaries(st.sampled_from(sorted(SECTIONS)) | keys,
                           st.dictionaries(keys, values, max_size=4) | values, max_size=4)
yaml_text = st.one_of(st.sampled_from(YAML_TOKENS), st.sampled_from(YAML_TOKENS),
                      st.lists(st.sampled_from(YAML_TOKENS), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
                      st.text(string.printable, max_size=12))
key_value = st.tuples(st.sampled_from(DOTTED) | st.text(max_size=12), yaml_text).map(lambda kv: f"{kv[0]}={kv[1]}")
override_text = st.one_of(key_value, key_value, key_value, st.text(max_size=20))
QUICK = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _config_or_own_error(fn) -> None:
    try:
        cfg = fn()
    except GanlandError as e:
        assert str(e)  # a message, not a bare exception
        return
    assert isinstance(cfg, Config)
    assert isinstance(cfg.to_yaml(), str)  # what a run folder's config.yaml would hold


@QUICK
@given(sections)
def test_any_mapping_gives_a_config_or_a_config_error(tree):
    _config_or_own_error(lambda: load_config(tree))


@QUICK
@given(st.dictionaries(st.sampled_from(DOTTED) | st.text(max_size=10) | st.integers(0, 3), values, max_size=4))
def test_any_override_mapping_gives_a_config_or_a_config_error(overrides):
    _config_or_own_error(lambda: load_config(None, overrides))


@QUICK
@given(st.lists(override_text, max_size=4))
def test_any_override_strings_give_a_config_or_a_config_error(overrides):
    _config_or_own_error(lambda: load_config(None, overrides))


@QUICK
@given(override_text | st.text())
def test_parse_override_gives_a_pair_or_a_config_error(text):
    try:
        key, _ = parse_override(text)
    except GanlandError:
        return
    assert isinstance(key, str)


@QUICK
@given(st.text(string.printable + "&*!|>%@`\u00e9", max_size=60) | st.sampled_from(YAML_TOKENS))
def test_any_recipe_file_gives_a_config_or_a_config_error(tmp_path_factory, text):
    path = Path(tmp_path_factory.mktemp("recipe")) / "r.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _config_or_own_error(lambda: load_config(str(path)))


# --- rules beside the fields, one generic pass ----------------------------------------------------------


def test_every_bound_declared_on_a_field_is_enforced():
    from ganland.config import fields_of

    checked = 0
    for key, f, default, _ in fields_of(load_config()):
        rules = f.metadata
        bad = ([rules["at_least"] - 1] if "at_least" in rules else []) + ([rules["above"]] if "above" in rules else []) \
            + ([rules["below"]] if "below" in rules else [])
        for value in bad:
            value = [value, value] if isinstance(default, tuple) else value
            with pytest.raises(ConfigError, match=rf"^{key.replace('.', r'[.]')} must "):
                load_config(None, {key: value})
            checked += 1
        if "one_of" in rules:
            with pytest.raises(ConfigError, match=rf"^{key.replace('.', r'[.]')} must be one of"):
                load_config(None, {key: "nonesuch"})
            checked += 1
    assert checked >= 30


def test_a_stopping_rule_given_replaces_the_recipes_others():
    from ganland.config import stop_overrides, stop_rules

    assert stop_rules(load_config("fashion-dcgan")) == {"train.minutes": 10.0}
    assert stop_rules(load_config("fashion-dcgan", {"train.steps": 5})) == {"train.steps": 5}
    assert stop_rules(load_config("fashion-dcgan", ["train.epochs=2"])) == {"train.epochs": 2.0}
    both = load_config("fashion-dcgan", {"train.steps": 5, "train.minutes": 1})  # both given: both kept
    assert stop_rules(both) == {"train.steps": 5, "train.minutes": 1.0}
    assert stop_rules(load_config("fashion-dcgan", {"train.batch_size": 8})) == {"train.minutes": 10.0}
    assert stop_overrides() == {} and stop_overrides(minutes=2.5) == {"train.minutes": 2.5}


def test_what_may_change_on_resume_is_declared_per_field():
    from ganland.config import resumable_keys, resume_changes

    saved = load_config("fashion-dcgan")
    assert resume_changes(saved, load_config("fashion-dcgan", {"model.z_dim": 100})) == []  # unchanged: fine
    fast = {"speed.threads": 1, "speed.amp": "bf16", "speed.compile": True, "speed.reuse_fake": False,
            "speed.channels_last": False, "train.steps": 9, "eval.every": 5, "train.device": "cpu"}
    assert resume_changes(saved, load_config("fashion-dcgan", fast)) == []
    every_speed_key = {f"speed.{f.name}" for f in dataclasses.fields(load_config().speed)}
    assert every_speed_key <= set(resumable_keys())
    changed = resume_changes(saved, load_config("fashion-dcgan", {"model.z_dim": 64, "optim.G.lr": 1e-3,
                                                                  "model.options": {"g_width": 8}}))
    assert changed == ["model.z_dim: 100 -> 64", "model.options: {'g_width': 64, 'd_width': 64} -> {'g_width': 8}",
                       "optim.G.lr: 0.0016 -> 0.001"]
