"""Classifier metrics: Inception Score limits and a hand value, class coverage, conditional accuracy."""
import numpy as np
import pytest

from ganland.errors import ConfigError
from ganland.metrics import (class_coverage, class_histogram, conditional_accuracy, conditional_accuracy_by_class,
                             inception_score)


def test_is_of_balanced_one_hot_is_k():
    probs = np.eye(10)[np.tile(np.arange(10), 20)]  # (200, 10), every split holds each class twice
    mean, std = inception_score(probs, n_splits=10)
    assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-12)
    assert inception_score(probs, n_splits=1)[0] == pytest.approx(10.0)


def test_is_of_identical_rows_is_one():
    probs = np.tile(np.array([0.7, 0.2, 0.1]), (50, 1))
    assert inception_score(probs, n_splits=5) == (pytest.approx(1.0), pytest.approx(0.0, abs=1e-12))


def test_is_hand_value():
    # Two rows [1, 0] and [0.5, 0.5]: p(y) = [0.75, 0.25];
    # KL1 = log(1 / 0.75); KL2 = 0.5 log(0.5 / 0.75) + 0.5 log(0.5 / 0.25); IS = exp((KL1 + KL2) / 2).
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    kl1 = np.log(1 / 0.75)
    kl2 = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(2.0)
    assert inception_score(probs, n_splits=1)[0] == pytest.approx(np.exp((kl1 + kl2) / 2))


def test_is_errors():
    with pytest.raises(ConfigError, match="n_splits"):
        inception_score(np.eye(3), n_splits=4)
    with pytest.raises(ConfigError, match="sum to 1"):
        inception_score(np.ones((4, 3)))
    with pytest.raises(ConfigError, match=">= 0"):
        inception_score(np.array([[1.5, -0.5]]))


def test_class_histogram_from_probs_and_labels():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    np.testing.assert_array_equal(class_histogram(probs, 3), [2, 1, 0])
    np.testing.assert_array_equal(class_histogram(np.array([0, 2, 2, 2]), 4), [1, 0, 3, 0])
    with pytest.raises(ConfigError, match=r"\[0, 3\)"):
        class_histogram(np.array([0, 3]), 3)
    with pytest.raises(ConfigError, match="3 classes"):
        class_histogram(probs, 4)


def test_class_coverage_hand_built():
    # 200 samples over 4 classes: 120, 79, 1, 0 -> present 3 of 4; >= 1 % (2 samples): 2 of 4.
    labels = np.repeat([0, 1, 2], [120, 79, 1])
    out = class_coverage(labels, 4)
    assert out["coverage"] == 0.75
    assert out["coverage_min_share"] == 0.5 and out["min_share"] == 0.01
    assert out["histogram"] == [120, 79, 1, 0]
    p = np.array([120, 79, 1]) / 200
    assert out["entropy"] == pytest.approx(-(p * np.log(p)).sum() / np.log(4))
    balanced = class_coverage(np.eye(5)[np.arange(50) % 5], 5)
    assert balanced["coverage"] == 1.0 and balanced["entropy"] == pytest.approx(1.0)
    collapsed = class_coverage(np.zeros(30, dtype=int), 5)
    assert collapsed["coverage"] == 0.2 and collapsed["entropy"] == 0.0


def test_conditional_accuracy():
    probs = np.eye(3)[[0, 1, 2, 2]]  # predicted 0 1 2 2
    assert conditional_accuracy(probs, np.array([0, 1, 2, 0])) == 0.75
    with pytest.raises(ConfigError, match="4 probability rows but 3"):
        conditional_accuracy(probs, np.array([0, 1, 2]))
    with pytest.raises(ConfigError, match="integers"):
        conditional_accuracy(probs, np.array([0.5, 1, 2, 0]))


def test_conditional_accuracy_by_class():
    probs = np.eye(4)[[0, 1, 2, 2, 0, 1]]  # predicted 0 1 2 2 0 1
    requested = np.array([0, 1, 2, 0, 0, 2])  # class 0: 2 of 3 right, 1: 1 of 1, 2: 1 of 2, 3: never asked
    assert conditional_accuracy_by_class(probs, requested) == [2 / 3, 1.0, 0.5, None]
    with pytest.raises(ConfigError, match="6 probability rows but 2"):
        conditional_accuracy_by_class(probs, np.array([0, 1]))
