"""lib.rl.rollout: vector environments, the rollout buffer (truncation, final values, minibatches), the
episode tracker, evaluation."""
import numpy as np
import pytest
import torch

from lib.rl.actor_critic import ActorCritic
from lib.rl.rollout import EpisodeTracker, RolloutBuffer, collect_rollout, evaluate, make_vec_env, space_dims


def test_rollout_buffer_records_truncation_and_final_values():
    env = make_vec_env("CartPole-v1", 2, 0, max_episode_steps=7)   # truncates every 7 steps
    obs_dim, act_dim, cont = space_dims(env)
    torch.manual_seed(0)
    pol = ActorCritic(obs_dim, act_dim)
    buf = RolloutBuffer(20, 2, obs_dim, act_dim, cont)
    obs, _ = env.reset(seed=0)
    episodes = EpisodeTracker(2)
    collect_rollout(env, pol, buf, obs, episodes)
    ended = (buf.terminated + buf.truncated).sum()
    assert ended == len(episodes.log.episode_returns) == len(episodes.lengths) and ended >= 2
    assert all(n <= 7 for n in episodes.lengths)
    # CartPole pays 1 per step: an episode's return is its length
    assert episodes.log.episode_returns == [float(n) for n in episodes.lengths]
    assert np.all(np.diff(episodes.log.episode_end_steps) >= 0) and episodes.steps == 40
    assert np.all(buf.final_values[buf.truncated == 1] != 0)
    assert np.all(buf.final_values[buf.truncated == 0] == 0)
    with pytest.raises(RuntimeError, match="full"):
        buf.add(obs, np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))
    buf.compute_advantages(np.zeros(2), 0.99, 0.95)
    mbs = list(buf.minibatches(16, np.random.default_rng(0)))
    assert len(mbs) == 3 and sum(len(m["obs"]) for m in mbs) == 40
    with pytest.raises(ValueError, match="batch_size"):
        next(buf.minibatches(41, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="n_envs"):
        EpisodeTracker(0)


def test_evaluate_validation():
    with pytest.raises(TypeError):
        evaluate("not callable", "CartPole-v1")
    with pytest.raises(ValueError):
        evaluate(lambda o: np.zeros(len(o), int), "CartPole-v1", n_episodes=0)
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env("CartPole-v1", 0)
    with pytest.raises(TypeError, match="visit"):
        evaluate(lambda o: np.zeros(len(o), int), "CartPole-v1", n_episodes=1, visit=3)


def test_evaluate_visit_sees_every_step_of_the_running_episodes():
    seen = []
    rets = evaluate(lambda o: np.zeros(len(o), int), "CartPole-v1", n_episodes=3, seed=0,
                    visit=lambda obs, alive: seen.append((obs.copy(), alive.copy())))
    # CartPole pays 1 per step, so each episode's return is the number of steps it was alive before each step
    assert np.array_equal(np.sum([a for _, a in seen], axis=0), rets)
    assert all(o.shape == (3, 4) for o, _ in seen) and seen[0][1].all() and seen[-1][1].any()
