import numpy as np
import pytest

from lib.rl.marl import (MADDPGConfig, MatrixGame, MultiAgentDDPG, coordination_game, evaluate_team,
                         independent_gradient_ascent, independent_q_learning, matching_pennies, prisoners_dilemma,
                         pure_nash, train_maddpg)


def test_pure_nash_known_games():
    assert pure_nash(prisoners_dilemma()) == [(1, 1)]
    assert pure_nash(coordination_game()) == [(0, 0), (1, 1)]
    assert pure_nash(matching_pennies()) == []


def test_independent_q_learners_reach_equilibrium():
    r = independent_q_learning(prisoners_dilemma(), 3000, seed=0)
    assert r["Q_row"].argmax() == 1 and r["Q_col"].argmax() == 1          # defect, defect
    r = independent_q_learning(coordination_game(), 3000, seed=0)
    eq = (int(r["Q_row"].argmax()), int(r["Q_col"].argmax()))
    assert eq in pure_nash(coordination_game())


def test_gradient_ascent_cycles_but_averages_to_mixed_nash():
    r = independent_gradient_ascent(matching_pennies(), 4000, lr=0.05, theta_row=[0.5, 0.0])
    assert np.abs(r["p"][:, 0] - 0.5).max() > 0.1                         # the strategy keeps moving
    assert abs(r["p_avg"][-1, 0] - 0.5) < 0.05 and abs(r["q_avg"][-1, 0] - 0.5) < 0.05


def test_gradient_matches_finite_difference_of_payoff():
    g = MatrixGame("rand", np.array([[1.0, 2.0], [0.0, 3.0]]), np.array([[2.0, 0.0], [1.0, 1.0]]), ("a", "b"), ("a", "b"))
    th = np.array([0.3, -0.2])
    q = np.array([0.4, 0.6])
    sm = lambda t: np.exp(t) / np.exp(t).sum()  # noqa: E731
    p = sm(th)
    u = g.A @ q
    analytic = p * (u - p @ u)
    eps = 1e-6
    fd = np.array([(sm(th + eps * e) @ u - sm(th - eps * e) @ u) / (2 * eps) for e in np.eye(2)])
    assert np.allclose(analytic, fd, atol=1e-8)


def test_errors():
    with pytest.raises(ValueError):
        MatrixGame("bad", np.zeros((2, 2)), np.zeros((2, 3)), ("a", "b"), ("a", "b"))
    with pytest.raises(ValueError):
        independent_q_learning(prisoners_dilemma(), 0)
    with pytest.raises(ValueError, match="MADDPGConfig.tau"):
        MADDPGConfig(tau=0.0)
    with pytest.raises(ValueError):
        MultiAgentDDPG([3, 3], [2], [0, 0], [1, 1], MADDPGConfig())


def test_maddpg_config_validation():
    for field, bad in (("n_episodes", 0), ("gamma", 1.5), ("max_grad_norm", 0.0), ("noise_std", -0.1),
                       ("learning_starts", -1), ("batch_size", 2.0), ("seed", -2)):
        with pytest.raises(ValueError, match=f"MADDPGConfig.{field}"):
            MADDPGConfig(**{field: bad})
    with pytest.raises(TypeError, match="env_id"):
        MADDPGConfig(env_id="simple_spread_v3")


def test_critic_inputs_centralized_vs_independent():
    import torch

    for cen, width in ((True, 3 + 4 + 2 + 2), (False, 3 + 2)):
        ma = MultiAgentDDPG([3, 4], [2, 2], [np.zeros(2)] * 2, [np.ones(2)] * 2, MADDPGConfig(centralized=cen))
        obs = [torch.zeros(5, 3), torch.zeros(5, 4)]
        acts = [torch.zeros(5, 2), torch.zeros(5, 2)]
        assert ma.critic_input(0, obs, acts).shape == (5, width)
        a = ma.act([np.zeros(3), np.zeros(4)], 0.5, np.random.default_rng(0))
        assert all(np.all((x >= 0) & (x <= 1)) for x in a)


def test_maddpg_runs_on_pettingzoo_spread():
    from mpe2 import simple_spread_v3

    env_fn = lambda: simple_spread_v3.parallel_env(N=2, max_cycles=10, continuous_actions=True)  # noqa: E731
    run = train_maddpg(MADDPGConfig(env_id=env_fn, n_episodes=6, learning_starts=20, batch_size=16, update_every=10,
                                    updates_per_phase=2))
    assert len(run.log.episode_returns) == 6 and run.log.episode_end_steps[-1] == 60
    assert len(run.log.updates) == 5 and set(run.log.updates[0]) == {"step", "critic_loss_0", "critic_loss_1"}
    ev = evaluate_team(env_fn(), run.agent, 2)
    assert ev.shape == (2,) and np.all(np.isfinite(ev))
    with pytest.raises(ValueError, match="continuous"):
        train_maddpg(MADDPGConfig(env_id=lambda: simple_spread_v3.parallel_env(N=2, max_cycles=5), n_episodes=1))


def test_make_spread_checkpoint_writes_meta(tmp_path, monkeypatch):
    import json

    import lib.rl.marl as M

    monkeypatch.setattr(M, "SPREAD_CONFIG", dict(n_episodes=2, learning_starts=20, updates_per_phase=1,
                                                 batch_size=8))
    M.main(["--make-checkpoint", str(tmp_path / "ck"), "--seeds", "7"])
    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    assert {"command", "commit", "machine", "config", "eval", "curves"} <= set(meta)
    assert meta["command"].startswith("OMP_NUM_THREADS=1 python -m lib.rl.marl --make-checkpoint")
    agents, meta2 = M.load_spread_agents(tmp_path / "ck")
    ev = evaluate_team(M.make_spread_env(), agents["iddpg"][0], 2, seed=meta["eval_seed"])
    assert meta2 == meta and len(agents["maddpg"]) == 1 and np.isfinite(ev).all()


def test_shipped_spread_actors_reproduce_recorded_returns():
    from lib import DATA_DIR
    from lib.rl.marl import load_spread_agents, make_spread_env

    agents, meta = load_spread_agents(DATA_DIR / "checkpoints" / "marl-spread")
    assert meta["seeds"] == [0, 1, 2, 3, 4] and all(len(agents[m]) == 5 for m in agents)
    for i in (0, -1):  # first and last seed
        seed = meta["seeds"][i]
        for method in ("maddpg", "iddpg"):
            ev = evaluate_team(make_spread_env(), agents[method][i], meta["eval_episodes"],
                               seed=meta["eval_seed"])
            assert ev.mean() == pytest.approx(meta["eval"][f"{method}-seed{seed}"], abs=0.05)
    assert {"commit", "machine"} <= set(meta)
    assert "command" in meta and set(meta["curves"]) == {f"{m}-seed{s}" for m in ("maddpg", "iddpg") for s in meta["seeds"]}
