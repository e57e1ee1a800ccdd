"""The in-training evaluation and the held-out report alone, with stand-in generators and Ds."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ganland.config import load_config
from ganland.data import DATASETS, ArrayDataset
from ganland.errors import ConfigError
from ganland.training.eval_hook import InTrainingEval, heldout_report


def ring_generator(z, c):
    """Perfect samples of the ring: each z picks one of the 8 modes."""
    k = (z[:, 0].abs() * 1000).long() % 8
    angle = 2 * torch.pi * k.float() / 8
    return torch.stack([angle.cos(), angle.sin()], 1)


def test_scores_go_to_metrics_jsonl_with_a_quality_curve(tmp_path):
    cfg = load_config("ring", {"eval.every": 10, "eval.n_samples": 500})
    hook = InTrainingEval(cfg, DATASETS.get("ring")(), 0, tmp_path)
    assert hook.evaluator == "mixture" and hook.curve.headline == "high_quality" and not hook.curve.log_scale
    line = hook(ring_generator, 10)
    hook(ring_generator, 20)
    scores = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in scores] == [10, 20] and scores[0]["source"] == "in-training, step 10"
    assert scores[0]["metrics"] == scores[1]["metrics"]  # fixed noise: the same samples, the same score
    assert scores[0]["metrics"]["modes_captured"] == 8 and scores[0]["metrics"]["high_quality"] == 1.0
    assert scores[0]["protocol"]["n_generated"] == 500
    assert line.startswith("eval step 10: modes_captured 8  high_quality 1")
    assert (tmp_path / "samples" / "quality.png").is_file()


def test_every_registered_toy_has_an_evaluator(tmp_path):
    for name in ("gaussian-1d", "sine", "ring", "grid", "swiss-roll"):
        cfg = load_config(name if name != "swiss-roll" else None,
                          {"data.name": name, "eval.every": 1, "eval.n_samples": 50, "model.name": "mlp"})
        InTrainingEval(cfg, DATASETS.get(name)(), 0, tmp_path)  # refuses at start when there are no metrics


def test_a_dataset_naming_an_unknown_evaluator_is_refused_at_start(tmp_path):
    data = DATASETS.get("ring")()
    data.evaluator = "nonesuch"
    with pytest.raises(ConfigError, match="unknown evaluator 'nonesuch'"):
        InTrainingEval(load_config("ring", {"eval.every": 1}), data, 0, tmp_path)


class MeanD(torch.nn.Module):
    """D(x) = mean pixel value: easy to compute by hand."""

    def forward(self, x, c=None):
        return x.flatten(1).mean(1)


def test_heldout_report_by_hand():
    train = ArrayDataset("a", torch.full((8, 1, 2, 2), 255, dtype=torch.uint8))  # model range +1
    test = ArrayDataset("b", torch.zeros((8, 1, 2, 2), dtype=torch.uint8))  # model range -1
    d_real = lambda logits: F.softplus(-logits).mean()  # noqa: E731  (non-saturating D on reals)
    D = MeanD().train()
    report = heldout_report(D, d_real, train, test, 2, 4, 0, torch.device("cpu"), conditional=False)
    assert report == pytest.approx({"heldout_loss_D_real": float(F.softplus(torch.tensor(1.0))),
                                    "train_loss_D_real": float(F.softplus(torch.tensor(-1.0)))})
    assert D.training  # put back in training mode
    assert heldout_report(D, d_real, train, test, 0, 4, 0, "cpu", False) == {}
    ring = DATASETS.get("ring")()
    assert heldout_report(D, d_real, ring, ring, 2, 4, 0, "cpu", False) == {}  # no held-out split to compare
