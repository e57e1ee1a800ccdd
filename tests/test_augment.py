"""ganland.augment: DiffAugment ops, policies, deterministic drawing and ADA's controller."""
from __future__ import annotations

import pytest
import torch

from ganland.augment import (OPS, AdaptiveAugment, augment, draw_params, parse_policy,
                             shift_extent)
from ganland.errors import CheckpointError, ConfigError

ALL_OPS = ("translation", "cutout", "brightness", "contrast", "saturation")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 4, c: int = 3, h: int = 16, w: int = 16, seed: int = 1,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random images (N, C, H, W) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, h, w, generator=g) * 2 - 1).to(dtype)


def drawn(names, n: int, h: int, w: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(params, mask uniforms) per op, drawn in augment's documented order from a fresh generator."""
    g = gen(seed)
    return [(draw_params(name, n, h, w, g), torch.rand(n, generator=g)) for name in names]


# ---- shapes, dtypes, identities ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("p", [0.5, 1.0])
def test_shape_dtype_device_kept(dtype, channels, p):
    x = images(c=channels, h=12, w=20, dtype=dtype)
    out = augment(x, "default", p, gen())
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("op", ALL_OPS)
def test_p_zero_is_identity(op):
    x = images()
    out = augment(x, (op,), 0.0, gen())
    assert torch.equal(out, x)


@pytest.mark.parametrize("op", ALL_OPS)
def test_p_one_changes_every_sample(op):
    n, h, w = 8, 16, 16
    x = images(n=n, h=h, w=w)
    out = augment(x, (op,), 1.0, gen(3))
    changed = (out != x).flatten(1).any(1)
    params, _ = drawn((op,), n, h, w, seed=3)[0]
    if op == "translation":  # a (0, 0) shift is the one draw that leaves a sample as it was
        assert torch.equal(changed, (params != 0).any(1))
    else:
        assert changed.all()
    assert torch.equal(out, OPS[op](x, params))


def test_unchosen_samples_are_exactly_unchanged():
    n, h, w = 64, 8, 8
    x = images(n=n, h=h, w=w)
    out = augment(x, ("brightness",), 0.5, gen(5))
    params, u = drawn(("brightness",), n, h, w, seed=5)[0]
    chosen = u < 0.5
    assert 0 < int(chosen.sum()) < n
    assert torch.equal(out[~chosen], x[~chosen])
    assert torch.equal(out[chosen], (x + params[:, 0].view(-1, 1, 1, 1))[chosen])


# ---- the geometric ops -------------------------------------------------------------------------


@pytest.mark.parametrize("h,w", [(16, 16), (12, 20), (4, 4), (9, 7)])
def test_translation_moves_a_pixel_by_integer_shifts_and_fills_zero(h, w):
    n = 32
    sy, sx = shift_extent(h), shift_extent(w)
    r, c = h // 2, w // 2
    x = torch.full((n, 1, h, w), -1.0)
    x[:, :, r, c] = 1.0
    out = augment(x, ("translation",), 1.0, gen(7))
    params, _ = drawn(("translation",), n, h, w, seed=7)[0]
    for k in range(n):
        dy, dx = int(params[k, 0]), int(params[k, 1])
        assert abs(dy) <= sy and abs(dx) <= sx and params[k].eq(params[k].round()).all()
        expected = torch.zeros(h, w)  # vacated pixels: 0
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    expected[i, j] = x[k, 0, i - dy, j - dx]
        assert torch.equal(out[k, 0], expected)
        assert out[k, 0, r + dy, c + dx] == 1.0 and int((out[k] == 1.0).sum()) == 1


def test_translation_extent_covers_minus_s_to_s():
    assert [shift_extent(side) for side in (4, 8, 12, 16, 20, 28, 32, 64)] == [1, 1, 2, 2, 3, 4, 4, 8]
    params = draw_params("translation", 2000, 12, 28, gen())
    assert params[:, 0].min() == -2 and params[:, 0].max() == 2
    assert params[:, 1].min() == -4 and params[:, 1].max() == 4
    assert params.dtype == torch.float32


@pytest.mark.parametrize("h,w", [(16, 16), (9, 7), (4, 6)])
def test_cutout_zeroes_a_half_side_square_clipped_at_the_borders(h, w):
    n = 64
    x = torch.ones(n, 3, h, w)
    out = augment(x, ("cutout",), 1.0, gen(11))
    params, _ = drawn(("cutout",), n, h, w, seed=11)[0]
    ch, cw = h // 2, w // 2
    clipped = 0
    for k in range(n):
        cy, cx = int(params[k, 0]), int(params[k, 1])
        assert 0 <= cy < h and 0 <= cx < w
        top, left = cy - ch // 2, cx - cw // 2
        rows = range(max(0, top), min(h, top + ch))
        cols = range(max(0, left), min(w, left + cw))
        zero = out[k] == 0  # (C, H, W)
        assert int(zero.sum()) == 3 * len(rows) * len(cols)
        assert zero[:, rows.start:rows.stop, cols.start:cols.stop].all()
        assert (out[k][~zero] == 1).all()
        clipped += len(rows) * len(cols) < ch * cw
    assert 0 < clipped < n  # some squares clipped by a border, some whole


# ---- the colour ops ----------------------------------------------------------------------------


def test_colour_ops_match_hand_computed_values():
    n, c, h, w = 6, 3, 5, 4
    x = images(n=n, c=c, h=h, w=w)
    x64 = x.double()
    for op in ("brightness", "contrast", "saturation"):
        out = augment(x, (op,), 1.0, gen(13))
        params, _ = drawn((op,), n, h, w, seed=13)[0]
        v = params[:, 0]
        if op == "brightness":
            assert ((v >= -0.5) & (v < 0.5)).all()
        elif op == "contrast":
            assert ((v >= 0.5) & (v < 1.5)).all()
        else:
            assert ((v >= 0.0) & (v < 2.0)).all()
        expected = torch.empty_like(x64)
        for k in range(n):
            s = float(v[k])
            if op == "brightness":
                expected[k] = x64[k] + s
            elif op == "contrast":
                m = x64[k].sum() / (c * h * w)
                expected[k] = (x64[k] - m) * s + m
            else:
                m = sum(x64[k, i] for i in range(c)) / c  # (H, W)
                expected[k] = (x64[k] - m) * s + m
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-5)


def test_color_shorthand_is_brightness_saturation_contrast():
    x = images(n=5, h=8, w=8)
    a = augment(x, "color", 0.7, gen(2))
    b = augment(x, ("brightness", "saturation", "contrast"), 0.7, gen(2))
    assert torch.equal(a, b)


# ---- gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [*ALL_OPS, "default"])
def test_gradients_flow_to_the_images(policy):
    x = images(n=4, h=8, w=8).requires_grad_(True)
    out = augment(x, policy, 1.0, gen(4))
    weights = images(n=4, h=8, w=8, seed=9)
    (out * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.flatten(1).abs().sum(1) > 0).all()


def test_gradients_flow_in_bfloat16_channels_last():
    x = images(n=4, h=8, w=8, dtype=torch.bfloat16).to(memory_format=torch.channels_last).requires_grad_(True)
    augment(x, "default", 0.5, gen(4)).float().square().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all() and x.grad.abs().sum() > 0


# ---- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_output_and_the_global_rng_is_untouched():
    x = images(n=8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = augment(x, "default", 0.6, gen(21))
    b = augment(x, "default", 0.6, gen(21))
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.equal(a, augment(x, "default", 0.6, gen(22)))


def test_draw_count_does_not_depend_on_p_or_data():
    states = []
    for p, seed in ((0.3, 1), (0.9, 2), (0.0, 3), (1.0, 4)):
        g = gen(0)
        augment(images(seed=seed), "default", p, g)
        states.append(g.get_state())
    assert all(torch.equal(states[0], s) for s in states[1:])
    g = gen(0)
    augment(images(), "default", 0.3, g)
    assert not torch.equal(g.get_state(), gen(0).get_state())  # it did draw


@pytest.mark.parametrize("size", [2, 4])
def test_sharded_calls_equal_one_call_on_the_global_batch(size):
    x = images(n=8, h=12, w=10)
    whole = augment(x, "default", 0.5, gen(8))
    n = len(x) // size
    parts = [augment(x[r * n:(r + 1) * n], "default", 0.5, gen(8), shard=(r, size)) for r in range(size)]
    assert torch.equal(torch.cat(parts), whole)


def test_bad_shard_or_p_or_input_is_refused():
    x = images()
    with pytest.raises(ValueError, match="rank"):
        augment(x, "default", 0.5, gen(), shard=(2, 2))
    with pytest.raises(ConfigError, match=r"p must be a number in \[0, 1\]"):
        augment(x, "default", 1.5, gen())
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        augment(x[0], "default", 0.5, gen())
    with pytest.raises(ValueError, match="torch.Generator"):
        augment(x, "default", 0.5, None)


# ---- policies ----------------------------------------------------------------------------------


def test_parse_policy_expands_and_turns_off():
    assert parse_policy("default", 3) == ("translation", "cutout", "brightness", "saturation", "contrast")
    assert parse_policy("default", 1) == ("translation", "cutout", "brightness", "contrast")
    assert parse_policy(" Translation , cutout ", 1) == ("translation", "cutout")
    assert parse_policy("color,translation", 3) == ("brightness", "saturation", "contrast", "translation")
    assert parse_policy("", 3) == () and parse_policy("none", 1) == () and parse_policy(" None ", 3) == ()
    for bad in ("translation,,cutout", "none,cutout"):
        with pytest.raises(ConfigError, match="augment policy"):
            parse_policy(bad, 3)


def test_unknown_op_names_the_known_ones_and_a_close_match():
    with pytest.raises(ConfigError) as info:
        parse_policy("translaton,cutout", 3)
    message = str(info.value)
    assert 'Did you mean "translation"?' in message and "cutout" in message and "saturation" in message
    with pytest.raises(ConfigError, match='Did you mean "cutout"'):
        augment(images(), ("cutuot",), 0.5, gen())


def test_saturation_on_grayscale_is_a_config_error():
    x = images(c=1)
    for call in (lambda: parse_policy("saturation", 1), lambda: parse_policy("color", 1),
                 lambda: augment(x, ("saturation",), 1.0, gen()),
                 lambda: augment(x, "brightness,saturation", 0.0, gen()),
                 lambda: OPS["saturation"](x, torch.ones(4, 1))):
        with pytest.raises(ConfigError, match="colour images with 3 channels"):
            call()


# ---- memory format and bfloat16 ----------------------------------------------------------------


@pytest.mark.parametrize("p", [0.5, 1.0])
def test_channels_last_input(p):
    x = images(n=4, c=3, h=12, w=10)
    xl = x.to(memory_format=torch.channels_last)
    out = augment(xl, "default", p, gen(6))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, augment(x, "default", p, gen(6)))
    assert augment(x, "default", p, gen(6)).is_contiguous()


def test_bfloat16_input_follows_float32():
    x = images(n=6, h=8, w=8)
    out = augment(x.bfloat16(), "default", 0.7, gen(12))
    assert out.dtype == torch.bfloat16
    reference = augment(x.bfloat16().float(), "default", 0.7, gen(12))
    torch.testing.assert_close(out.float(), reference, rtol=0, atol=0.1)


# ---- ADA ---------------------------------------------------------------------------------------


def test_ada_rt_and_p_steps_up_and_down_by_exactly_images_over_kimg():
    ada = AdaptiveAugment(target=0.6, kimg=2.0)
    assert ada.rt is None and ada.p == 0.0
    ada.observe(torch.tensor([3.0, 1.0, -2.0, 5.0]))  # signs 1, 1, -1, 1
    ada.observe(torch.tensor([[0.5], [0.25]], dtype=torch.bfloat16))  # 1, 1
    assert ada.stats().tolist() == [4.0, 6.0] and ada.stats().dtype == torch.float64
    p = ada.adjust(ada.stats(), images=64)
    assert ada.rt == pytest.approx(4 / 6) and p == ada.p == 0.0 + 64 / (2.0 * 1000)
    assert ada.stats().tolist() == [0.0, 0.0]  # reset
    p_before = ada.p
    ada.observe(torch.tensor([-1.0, -1.0, 1.0]))
    p = ada.adjust(ada.stats(), images=16)
    assert ada.rt == pytest.approx(-1 / 3) and p == p_before - 16 / 2000.0


def test_ada_clamps_to_zero_and_one_and_ignores_empty_totals():
    ada = AdaptiveAugment(target=0.6, kimg=0.1, p=0.95)
    assert ada.adjust(torch.tensor([10.0, 10.0], dtype=torch.float64), images=64) == 1.0
    assert ada.adjust(torch.tensor([-10.0, 10.0], dtype=torch.float64), images=1000) == 0.0
    rt = ada.rt
    assert ada.adjust(torch.zeros(2, dtype=torch.float64), images=64) == 0.0 and ada.rt == rt
    ada = AdaptiveAugment(target=0.5, kimg=1.0, p=0.3)
    assert ada.adjust(torch.tensor([1.0, 2.0], dtype=torch.float64), images=10) == 0.3  # rt == target


def test_ada_state_dict_round_trip_resumes_identically():
    a = AdaptiveAugment(target=0.6, kimg=1.0)
    a.observe(torch.tensor([1.0, 2.0, 3.0]))
    a.adjust(a.stats(), images=32)
    a.observe(torch.tensor([1.0, -2.0]))  # pending, not yet adjusted
    state = a.state_dict()
    assert all(isinstance(v, float) for v in (state["p"], state["rt"], state["sign_sum"], state["count"]))
    b = AdaptiveAugment(target=0.6, kimg=1.0)
    b.load_state_dict(state)
    assert b.p == a.p and b.rt == a.rt and torch.equal(b.stats(), a.stats())
    for ada in (a, b):
        ada.observe(torch.tensor([4.0, 5.0, -1.0]))
    assert a.adjust(a.stats(), images=48) == b.adjust(b.stats(), images=48) and a.rt == b.rt
    with pytest.raises(CheckpointError, match="sign_sum"):
        b.load_state_dict({"p": 0.1, "rt": None})


def test_ada_settings_are_validated():
    for kwargs, word in (({"target": 0.0, "kimg": 100}, "target"), ({"target": 1.0, "kimg": 100}, "target"),
                         ({"target": 0.6, "kimg": 0}, "kimg"), ({"target": 0.6, "kimg": -5}, "kimg"),
                         ({"target": 0.6, "kimg": 100, "p": 2.0}, "p")):
        with pytest.raises(ConfigError, match=word):
            AdaptiveAugment(**kwargs)
