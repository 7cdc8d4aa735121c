"""PPO: the adaptive KL controller, the config's checks, and a short training run whose diagnostics obey
what clipping guarantees (the losses are tested in test_objectives.py)."""
import numpy as np
import pytest
import torch

from lib.runs import TrainLog
from lib.rl.ppo import EPOCH_DIAGNOSTICS, AdaptiveKLController, PPOConfig, PPORun, train_ppo


def test_adaptive_kl_controller():
    c = AdaptiveKLController(1.0, 0.01)
    assert c.update(0.05) == 2.0
    assert c.update(0.001) == 1.0
    assert c.update(0.01) == 1.0
    with pytest.raises(ValueError):
        AdaptiveKLController(beta=0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"variant": "trust"}, "PPOConfig.variant"),
    ({"batch_size": 10_000}, "batch_size"),
    ({"n_envs": 0}, "PPOConfig.n_envs"),
    ({"n_epochs": 0}, "PPOConfig.n_epochs"),
    ({"gamma": 1.5}, "PPOConfig.gamma"),
    ({"lam": -0.1}, "PPOConfig.lam"),
    ({"clip_eps": 1.0}, "PPOConfig.clip_eps"),
    ({"lr": 0.0}, "PPOConfig.lr"),
    ({"adam_eps": -1e-5}, "PPOConfig.adam_eps"),
    ({"target_kl": 0.0}, "PPOConfig.target_kl"),
    ({"seed": -1}, "PPOConfig.seed"),
    ({"total_steps": 1.5}, "PPOConfig.total_steps"),
    ({"hidden": (64, 0)}, "PPOConfig.hidden"),
    ({"env_id": ""}, "PPOConfig.env_id"),
    ({"ent_coef": -0.1}, "PPOConfig.ent_coef"),
])
def test_config_rejects_bad_values_with_the_field_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PPOConfig(**kwargs)


def test_short_ppo_run_learns_and_logs_bounded_diagnostics():
    torch.set_num_threads(1)
    cfg = PPOConfig(total_steps=12_288, n_epochs=10, eval_every=6_000, eval_episodes=5)
    run = train_ppo(cfg)
    assert isinstance(run, PPORun) and isinstance(run.log, TrainLog) and run.config is cfg
    log = run.log
    assert log.eval_returns[-1] > 60                     # a random policy scores ~20
    for u in log.updates:
        assert set(EPOCH_DIAGNOSTICS) <= set(u)
        assert len(u["approx_kl"]) == cfg.n_epochs
        assert all(0 <= c <= 1 for c in u["clip_fraction"])
        assert all(0 <= k < 0.2 for k in u["approx_kl"])
    # linear annealing: lr and clip range fall from their initial values
    lrs = log.series("lr")
    assert lrs[0] == cfg.lr and np.all(np.diff(lrs) < 0) and log.updates[0]["clip_eps"] == cfg.clip_eps
    assert log.episode_returns and log.wall_time >= log.eval_time > 0
    # penalty variant runs and adapts beta
    cfg_p = PPOConfig(total_steps=2_560, variant="penalty", n_epochs=4, eval_every=2_560, eval_episodes=2)
    log_p = train_ppo(cfg_p).log
    assert all("beta" in u and "kl_after" in u for u in log_p.updates)
    assert len({u["beta"] for u in log_p.updates}) > 1


def test_target_kl_stops_the_epochs_and_stop_return_stops_the_run():
    torch.set_num_threads(1)
    cfg = PPOConfig(total_steps=1_024, n_epochs=20, lr=3e-3, target_kl=1e-4, anneal=False,
                    eval_every=1_024, eval_episodes=1)
    for u in train_ppo(cfg).log.updates:
        assert u["n_grad_steps"] < cfg.n_epochs            # every iteration stopped early
        assert len(u["approx_kl"]) == u["n_grad_steps"]   # one minibatch per epoch
    run = train_ppo(PPOConfig(total_steps=2_048, eval_every=256, eval_episodes=1, stop_return=0.0))
    assert len(run.log.eval_steps) == 1 and len(run.log.updates) == 1
