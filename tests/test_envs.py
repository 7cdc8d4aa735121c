"""Unit tests for lib.rl.envs: the book's custom environments and the checked rollout loop."""
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lib.rl import envs
from lib.rl.envs import APIContractError, RandomWalkEnv, TravelEnv, rollout


@pytest.mark.parametrize("env_id, kwargs", [("Book/RandomWalk-v0", {}),
                                             ("Book/RandomWalk-v0", {"n_states": 19, "left_reward": -1.0}),
                                             ("Book/Travel-v0", {})])
def test_env_checker_passes(env_id, kwargs):
    env = gym.make(env_id, render_mode="ansi", **kwargs).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(env, skip_render_check=False)


def test_registered_with_gymnasium():
    e = gym.make("Book/RandomWalk-v0", n_states=7)
    assert e.observation_space.n == 9
    assert gym.make("Book/Travel-v0").unwrapped.state_names[-1] == "Airport"
    envs.register_envs()  # idempotent


def test_random_walk_true_values_and_dynamics():
    np.testing.assert_allclose(RandomWalkEnv().true_values(), np.arange(1, 6) / 6, atol=1e-12)
    np.testing.assert_allclose(RandomWalkEnv(19, left_reward=-1.0).true_values(), np.arange(-18, 19, 2) / 20,
                               atol=1e-12)
    e = RandomWalkEnv()
    s, _ = e.reset(seed=0)
    assert s == 3
    for _ in range(3):
        s, r, term, trunc, _ = e.step(1)
    assert (s, r, term, trunc) == (6, 1.0, True, False)
    with pytest.raises(ValueError):
        RandomWalkEnv(0)
    with pytest.raises(ValueError):
        e.step(2)


def test_travel_episodes_are_short_and_end_at_airport():
    e = TravelEnv(render_mode="ansi")
    for seed in range(50):
        tr = rollout(e, lambda o, rng: int(rng.integers(2)), seed=seed)
        assert tr.ended_by == "terminated" and tr.observations[-1] == 5 and 2 <= tr.length <= 3
    assert "Airport" in e.render()


def test_rollout_cartpole_truncation_and_contract():
    env = gym.make("CartPole-v1", max_episode_steps=50)
    tr = rollout(env, lambda o, rng: int(o[2] + 0.5 * o[3] > 0), seed=0)
    assert tr.ended_by == "truncated" and tr.length == 50 and tr.total_reward == 50.0
    tr2 = rollout(env, lambda o, rng: int(o[2] + 0.5 * o[3] > 0), seed=0)
    np.testing.assert_array_equal(tr.observations, tr2.observations)
    tr = rollout(env, lambda o, rng: 0, seed=0)
    assert tr.ended_by == "terminated" and tr.length < 50
    assert rollout(env, lambda o, rng: 1, seed=0, max_steps=3).ended_by == "cut"


class _BadEnv(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 5, 0.0, False, False, {}  # observation outside the space


def test_rollout_detects_contract_violations():
    with pytest.raises(APIContractError, match="outside"):
        rollout(_BadEnv(), lambda o, rng: 0)
    with pytest.raises(APIContractError, match="policy chose"):
        rollout(TravelEnv(), lambda o, rng: 7)
    with pytest.raises(TypeError):
        rollout("CartPole", lambda o, rng: 0)


def test_agent_stream_independent_of_environment_stream():
    env = TravelEnv()
    draws = []
    rollout(env, lambda o, rng: draws.append(rng.random()) or 0, seed=11, max_steps=1)
    env.reset(seed=11)
    assert draws[0] != env.np_random.random()   # same seed, different streams


def test_monte_carlo_travel_value_unbiased():
    from lib.rl.tabular import from_env, policy_evaluation
    env = TravelEnv()
    v = policy_evaluation(from_env(env), np.tile([0.3, 0.7], (6, 1)), 1.0)[0]
    g = np.array([rollout(env, lambda o, rng: int(rng.random() < 0.7), seed=s).total_reward for s in range(3000)])
    assert abs(g.mean() - v) < 3 * g.std() / np.sqrt(len(g))


def test_flat_discrete_observation_on_blackjack():
    from lib.rl.envs import FlatDiscreteObservation
    env = FlatDiscreteObservation(gym.make("Blackjack-v1"))
    assert env.observation_space.n == 32 * 11 * 2
    obs, _ = env.reset(seed=0)
    raw, _ = gym.make("Blackjack-v1").reset(seed=0)
    assert env.decode(obs) == tuple(int(x) for x in raw)
    tr = rollout(env, lambda o, rng: 0, seed=1)
    assert tr.ended_by == "terminated" and env.observation_space.contains(int(tr.observations[0]))
    with pytest.raises(TypeError):
        FlatDiscreteObservation(gym.make("CartPole-v1"))


# ---------------------------------------------------------------- the deep-RL sections' environments


@pytest.mark.parametrize("make", [lambda: envs.MaxBiasEnv(n_actions=4), lambda: envs.RiskyChain(length=3)])
def test_deep_rl_envs_pass_the_env_checker(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no render modes: the checker only notes it
        check_env(make(), skip_render_check=True)


def test_max_bias_env_dynamics():
    env = envs.MaxBiasEnv(n_actions=3, mean_b=-0.1)
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1.0, 0.0]
    assert env.step(0)[1:3] == (0.0, True)                        # left from A: reward 0, done
    env.reset(seed=0)
    o, r, term, _, _ = env.step(2)
    assert o.tolist() == [0.0, 1.0] and r == 0.0 and not term      # to B
    rewards = []
    for s in range(2000):
        env.reset(seed=s)
        env.step(1)
        rewards.append(env.step(0)[1])
    assert abs(np.mean(rewards) + 0.1) < 4 / np.sqrt(2000)         # N(-0.1, 1) in B
    with pytest.raises(ValueError):
        envs.MaxBiasEnv(n_actions=1)


def test_risky_chain_returns():
    env = envs.RiskyChain(length=2, safe_reward=1.0, high=3.0, low=-1.0, p_high=0.6)
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1.0, 0.0, 0.0]
    assert env.step(0)[1] == 1.0 and env.step(0)[2]                # two safe steps, then the end
    pays = []
    for s in range(2000):
        env.reset(seed=s)
        pays.append(env.step(1)[1])
    assert set(pays) == {3.0, -1.0} and abs(np.mean(np.array(pays) == 3.0) - 0.6) < 0.05
    with pytest.raises(ValueError):
        envs.RiskyChain(p_high=1.5)


def test_make_env():
    assert isinstance(envs.make_env(lambda: envs.RiskyChain()), envs.RiskyChain)
    assert envs.make_env("CartPole-v1").spec.id == "CartPole-v1"
    with pytest.raises(TypeError, match="env_id"):
        envs.make_env(3)
