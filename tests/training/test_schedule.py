"""The learning rates: a pure function of the step (and the guard's scale), set on the optimizers;
with train.minutes alone, a decay horizon estimated once and kept in the checkpoint."""
from __future__ import annotations

import pytest
import torch
import yaml

from ganland.config import DECAYS, OptimizerConfig
from ganland.training.checkpoint import list_checkpoints, load_checkpoint
from ganland.training.loop import Trainer
from ganland.training.runs import resume, train
from ganland.training.schedule import DECAY, LearningRates, step_budget

from .test_loop import tiny


def rates(decay_G="linear", decay_D="none", budget=100, minutes=None) -> LearningRates:
    opt_G = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    opt_D = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return LearningRates({"G": (opt_G, OptimizerConfig(lr=2e-4, decay=decay_G)),
                          "D": (opt_D, OptimizerConfig(lr=1e-4, decay=decay_D))}, budget, minutes)


def test_rates_are_a_pure_function_of_step_and_scale():
    s = rates()
    assert s.lr("G", 0) == 2e-4 and s.lr("G", 25) == pytest.approx(1.5e-4) and s.lr("G", 100) == 0.0
    assert s.lr("G", 150) == 0.0  # never negative past the horizon
    assert s.lr("D", 80) == 1e-4  # no decay
    assert s.lr("G", 50, scale=0.5) == pytest.approx(5e-5)
    s.apply(50, scale=0.5)
    assert s.optimizers["G"][0].param_groups[0]["lr"] == pytest.approx(5e-5)
    assert s.optimizers["D"][0].param_groups[0]["lr"] == pytest.approx(5e-5)
    assert [s.lr("G", 30) for _ in range(3)] == [s.lr("G", 30)] * 3  # no hidden state moves it
    assert tuple(DECAY) == DECAYS  # what config accepts is what the schedule defines


def test_step_budget_takes_the_smaller_rule():
    assert step_budget(None, None, 16, 1) is None
    assert step_budget(100, None, 16, 1) == 100
    assert step_budget(None, 1.5, 16, 2) == 12  # 24 batches, 2 per generator step
    assert step_budget(10, 1.5, 16, 2) == 10


def test_minutes_alone_estimate_a_horizon_once_and_keep_it():
    s = rates(budget=None, minutes=2.0)
    assert s.wants_estimate and s.lr("G", 10) == 2e-4  # no horizon yet: no decay
    assert s.estimate_horizon(step=50, seconds_done=10.0, seconds_per_step=0.1) == 50 + 1100
    assert not s.wants_estimate
    assert s.lr("G", 50) == 2e-4 and s.lr("G", 600) == pytest.approx(2e-4 * (1 - 550 / 1100))  # no jump at 50
    again = rates(budget=None, minutes=2.0)
    again.load_state_dict(s.state_dict(), step=600, scale=1.0)
    assert again.horizon == 1150 and again.lr("G", 700) == s.lr("G", 700)  # a resume continues the same schedule
    stepped = rates(budget=300)
    stepped.load_state_dict(s.state_dict(), step=600, scale=1.0)
    assert stepped.horizon == 300  # a step budget is always the config's own
    assert not rates(decay_G="none", budget=None, minutes=2.0).wants_estimate  # nothing to decay


def test_a_new_time_budget_holds_the_rate_then_decays_on_from_it():
    s = rates(budget=None, minutes=2.0)
    s.estimate_horizon(step=50, seconds_done=10.0, seconds_per_step=0.1)
    at_600 = s.lr("G", 600)
    longer = rates(budget=None, minutes=5.0)
    longer.load_state_dict(s.state_dict(), step=600, scale=1.0)  # resumed with --minutes 5 at step 600
    assert longer.wants_estimate and longer.lr("G", 600) == at_600 == longer.lr("G", 650)  # held, no jump
    longer.estimate_horizon(step=650, seconds_done=70.0, seconds_per_step=0.1)
    assert longer.horizon == 650 + 2300 and longer.lr("G", 650) == pytest.approx(at_600)
    assert longer.lr("G", 1800) == pytest.approx(at_600 * (1 - 1150 / 2300)) and longer.lr("G", 2950) == 0.0


def test_a_checkpoint_without_a_schedule_state_is_continued_from_its_optimizers_rate():
    s = rates(budget=None, minutes=2.0)
    opt_G = s.optimizers["G"][0]
    opt_G.param_groups[0]["lr"] = 0.25 * 2e-4 * 0.5  # an older ganland's rate: a quarter left, scale 0.5
    s.load_state_dict({}, step=900, scale=0.5)
    assert s.lr("G", 900, scale=0.5) == pytest.approx(0.25 * 2e-4 * 0.5)


def test_a_run_sets_the_scheduled_rates_and_leaves_its_config_alone(fake_mnist, tmp_path):
    cfg = tiny(fake_mnist, **{"train.steps": 10, "optim.G.decay": "linear"})
    run = train(cfg, str(tmp_path / "run")).run_dir
    ck = load_checkpoint(list_checkpoints(run)[0])
    # Step 10 is the end: the rate of the last step (index 9) is in the optimizer.
    assert ck["opt_G"]["param_groups"][0]["lr"] == pytest.approx(2e-4 * (1 - 9 / 10))
    assert ck["opt_D"]["param_groups"][0]["lr"] == 2e-4
    for text in ((run / "config.yaml").read_text(), ck["config_yaml"]):
        assert yaml.safe_load(text)["optim"]["G"]["lr"] == 2e-4


@pytest.mark.e2e
def test_a_time_limited_run_records_its_estimated_horizon_and_resumes_on_it(fake_mnist, tmp_path, capsys):
    cfg = tiny(fake_mnist, **{"train.minutes": 0.02, "optim.G.decay": "linear", "optim.D.decay": "linear"})
    result = train(cfg, str(tmp_path / "run"))
    ck = load_checkpoint(list_checkpoints(result.run_dir)[0])
    horizon = ck["schedule"]["horizon"]
    assert ck["schedule"]["estimated"] and ck["schedule"]["minutes"] == 0.02 and horizon > 2
    assert f"learning-rate decay over {horizon} steps (estimated for train.minutes=0.02)" in capsys.readouterr().out
    tr = Trainer(cfg, result.run_dir, resume=ck)
    assert tr.schedule.horizon == horizon and not tr.schedule.wants_estimate
    resumed = resume(result.run_dir, {"train.minutes": 0.04})  # a new budget: estimated again
    assert load_checkpoint(list_checkpoints(resumed.run_dir)[0])["schedule"]["minutes"] == 0.04
