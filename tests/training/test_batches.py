"""RealBatches alone: each epoch a permutation of the data, the last partial batch dropped, the
same batches after a state round trip, uint8 pixels converted once, labels for fake samples."""
from __future__ import annotations

import pytest
import torch

from ganland.data import DATASETS, ArrayDataset
from ganland.errors import ConfigError
from ganland.training.batches import RealBatches


def images(n: int = 10, classes: int = 2) -> ArrayDataset:
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()  # pixel value = index
    return ArrayDataset("tiny", x, torch.arange(n) % classes, class_names=[str(k) for k in range(classes)])


def index_of(x: torch.Tensor) -> list[int]:
    """Back from model range to the sample index held in the pixels."""
    return torch.round((x[:, 0, 0, 0] + 1) * 127.5).long().tolist()


def batches(data, bs=3, seed=0, **kw) -> RealBatches:
    return RealBatches(data, bs, torch.Generator().manual_seed(seed), torch.device("cpu"), **kw)


def test_each_epoch_is_a_permutation_without_the_partial_batch():
    b = batches(images(10), bs=3)
    assert b.per_epoch == 3
    for _ in range(4):
        seen, ends = [], []
        for _ in range(b.per_epoch):
            x, y, end = b.next()
            assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 and y is None
            seen += index_of(x)
            ends.append(end)
        assert ends == [False, False, True] and len(set(seen)) == 9 and set(seen) <= set(range(10))
        assert b.epoch_fraction == 0.0


def test_state_round_trip_gives_the_same_batches():
    a = batches(images(10), bs=3, seed=5)
    for _ in range(4):  # into the second epoch
        a.next()
    state = a.state_dict()
    ahead = [index_of(a.next()[0]) for _ in range(5)]
    b = batches(images(10), bs=3, seed=99)
    b.load_state_dict(state)
    assert [index_of(b.next()[0]) for _ in range(5)] == ahead
    assert b.epoch_fraction == a.epoch_fraction


def test_labels_and_fake_labels_follow_the_training_frequencies():
    data = ArrayDataset("skewed", torch.zeros(100, 1, 2, 2, dtype=torch.uint8), torch.tensor([0] * 90 + [1] * 10),
                        class_names=["a", "b"])
    b = batches(data, bs=4, labels=True)
    x, y, _ = b.next()
    assert y.shape == (4,) and y.dtype == torch.int64
    fake = b.fake_labels(20_000, 2, torch.Generator().manual_seed(0))
    assert abs(float((fake == 1).float().mean()) - 0.1) < 0.01
    assert b.fake_labels(5, 0, torch.Generator()) is None  # unconditional
    unlabelled = batches(images(10), bs=3)  # labels not asked for: uniform over the classes
    u = unlabelled.fake_labels(20_000, 4, torch.Generator().manual_seed(0))
    assert set(u.tolist()) == {0, 1, 2, 3} and abs(float((u == 3).float().mean()) - 0.25) < 0.02


def test_samplers_draw_fresh_batches_and_count_epochs():
    ring = DATASETS.get("ring")()
    b = batches(ring, bs=1000)
    assert b.per_epoch == len(ring) // 1000
    x1, _, _ = b.next()
    x2, _, _ = b.next()
    assert x1.shape == (1000, 2) and not torch.equal(x1, x2)


def test_channels_last_and_a_batch_larger_than_the_data():
    x, _, _ = batches(images(10), bs=3, channels_last=True).next()
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    x, _, _ = batches(images(10), bs=3).next()
    assert x.is_contiguous()
    with pytest.raises(ConfigError, match="holds 10 training samples, fewer than train.batch_size=11"):
        batches(images(10), bs=11)
