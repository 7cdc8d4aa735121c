import numpy as np
import pytest

from lib.rl.replay import ReplayBuffer


def test_circular_overwrite_and_sample_shapes():
    buf = ReplayBuffer(5, (3,), seed=0)
    for i in range(7):
        buf.add(np.full(3, i), i % 2, float(i), np.full(3, i + 1), i == 6)
    assert len(buf) == 5
    assert sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]   # 0 and 1 overwritten
    b = buf.sample(16)
    assert b["obs"].shape == (16, 3) and b["actions"].shape == (16,) and b["dones"].shape == (16,)
    assert np.all(b["next_obs"][:, 0] == b["obs"][:, 0] + 1)            # transitions stay aligned


def test_batched_add_matches_single_adds():
    a, b = ReplayBuffer(10, 2, seed=1), ReplayBuffer(10, 2, seed=1)
    obs = np.arange(8.0).reshape(4, 2)
    a.add(obs, [0, 1, 0, 1], [1, 2, 3, 4], obs + 1, [0, 0, 1, 0])
    for i in range(4):
        b.add(obs[i], i % 2, i + 1, obs[i] + 1, i == 2)
    for k in ("obs", "actions", "rewards", "next_obs", "dones"):
        assert np.array_equal(getattr(a, k), getattr(b, k))


def test_errors():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, 3)
    buf = ReplayBuffer(4, 3)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(2)
    with pytest.raises(ValueError, match="obs must have shape"):
        buf.add(np.zeros(4), 0, 0.0, np.zeros(4), False)
    buf.add(np.zeros(3), 0, 0.0, np.zeros(3), False)
    with pytest.raises(ValueError, match="batch_size"):
        buf.sample(0)


def test_continuous_actions_and_external_generator():
    import numpy as np

    buf = ReplayBuffer(8, (3,), action_shape=(2,), action_dtype=np.float32)
    buf.add(np.ones((4, 3)), np.full((4, 2), 0.5), np.arange(4), np.zeros((4, 3)), np.zeros(4))
    a = buf.sample(5, np.random.default_rng(7))
    b = buf.sample(5, np.random.default_rng(7))
    assert a["actions"].shape == (5, 2) and np.array_equal(a["rewards"], b["rewards"])
    with pytest.raises(TypeError, match="Generator"):
        buf.sample(2, rng=3)
    with pytest.raises(ValueError, match="action_shape"):
        ReplayBuffer(4, (3,), action_shape=(0,))


def test_continuous_actions():
    """DDPG/TD3's buffer: action vectors of float32."""
    buf = ReplayBuffer(3, (2,), action_shape=(1,), action_dtype=np.float32)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(2, np.random.default_rng(0))
    for i in range(5):
        buf.add(np.full(2, i), [i + 0.5], i, np.zeros(2), 0.0)
    assert buf.size == 3 and set(buf.rewards) == {2.0, 3.0, 4.0}
    batch = buf.sample(4, np.random.default_rng(0))
    assert batch["actions"].shape == (4, 1) and batch["actions"].dtype == np.float32
    with pytest.raises(ValueError):
        ReplayBuffer(0, (2,))


def test_one_reward_per_agent():
    """MADDPG's buffer: every agent's observation and action concatenated, a reward per agent."""
    buf = ReplayBuffer(4, (5,), seed=0, action_shape=(4,), action_dtype=np.float32, reward_shape=(2,))
    for i in range(3):
        buf.add(np.full(5, i), np.full(4, -i), [i, 10 * i], np.full(5, i + 1), 0.0)
    b = buf.sample(6)
    assert b["rewards"].shape == (6, 2) and np.all(b["rewards"][:, 1] == 10 * b["rewards"][:, 0])
    assert np.all(b["obs"][:, 0] == b["rewards"][:, 0]) and np.all(b["actions"][:, 0] == -b["obs"][:, 0])
    with pytest.raises(ValueError, match="reward_shape"):
        ReplayBuffer(4, (5,), reward_shape=(0,))
