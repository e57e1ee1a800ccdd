"""Metrics as pure functions: samples or features -> statistics -> numbers."""
from .classifier import (class_coverage, class_histogram, conditional_accuracy, conditional_accuracy_by_class,
                         inception_score)
from .fid import FeatureStats, StatsAccumulator, feature_statistics, fid, frechet_distance
from .kid import kid, mmd2_unbiased
from .prdc import density_coverage, prdc, precision_recall
from .restoration import psnr, ssim
from .signals import fit_sines, normal_1d_stats, sine_metrics
from .toy import mode_stats
from .two_sample import energy_distance
from . import cnn  # noqa: F401  (registers the bundled feature nets fashion-mnist-cnn, mnist-cnn)
from . import inception  # noqa: F401  (registers the feature net inception-v3-fid)

__all__ = [
    "mode_stats", "energy_distance",
    "FeatureStats", "StatsAccumulator", "feature_statistics", "frechet_distance", "fid",
    "kid", "mmd2_unbiased",
    "precision_recall", "density_coverage", "prdc", "psnr", "ssim",
    "inception_score", "class_histogram", "class_coverage", "conditional_accuracy",
    "conditional_accuracy_by_class",
    "normal_1d_stats", "fit_sines", "sine_metrics",
]
