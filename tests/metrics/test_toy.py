"""Mode statistics of 2-D mixtures on hand-built sample sets."""
import numpy as np
import pytest

from ganland.data.toy import ring_modes
from ganland.errors import ConfigError
from ganland.metrics import mode_stats

MODES = ring_modes(8, 1.0)  # (8, 2)
STD = 0.01


def test_all_modes_balanced():
    samples = np.repeat(MODES, 10, axis=0) + 0.5 * STD  # 80 samples, 10 per mode, all within 3 std
    out = mode_stats(samples, MODES, STD)
    assert out["modes_captured"] == 8 and out["high_quality"] == 1.0
    assert out["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert out["counts"] == [10] * 8


def test_one_mode():
    out = mode_stats(np.repeat(MODES[3:4], 20, axis=0), MODES, STD)
    assert out["modes_captured"] == 1 and out["high_quality"] == 1.0
    assert out["reverse_kl"] == pytest.approx(np.log(8))
    assert out["counts"][3] == 20


def test_off_mode_samples():
    off = np.zeros((30, 2))  # the centre of the ring: 1 away from every mode, 100 std
    mixed = np.concatenate([MODES[:2], off])  # 2 good samples of 32
    out = mode_stats(mixed, MODES, STD)
    assert out["modes_captured"] == 2 and out["high_quality"] == pytest.approx(2 / 32)
    out = mode_stats(off, MODES, STD)
    assert out["modes_captured"] == 0 and out["high_quality"] == 0.0 and out["reverse_kl"] == float("inf")


def test_mode_stats_edge_of_3_std():
    inside = MODES[:1] + np.array([[2.9 * STD, 0.0]])
    outside = MODES[:1] + np.array([[3.1 * STD, 0.0]])
    assert mode_stats(inside, MODES, STD)["high_quality"] == 1.0
    assert mode_stats(outside, MODES, STD)["high_quality"] == 0.0


def test_mode_stats_errors():
    with pytest.raises(ConfigError, match="samples"):
        mode_stats(np.zeros((5, 3)), MODES, STD)
    with pytest.raises(ConfigError, match="std"):
        mode_stats(np.zeros((5, 2)), MODES, 0.0)
