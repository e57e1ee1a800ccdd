"""Datasets: MNIST-family IDX files, CIFAR-10 binary, image folders and toy distributions."""
from .base import DATASETS, ArrayDataset, SamplerDataset, to_model_range, to_uint8
from . import idx, images, toy  # noqa: F401  (registers the datasets)

__all__ = ["DATASETS", "ArrayDataset", "SamplerDataset", "to_model_range", "to_uint8"]
