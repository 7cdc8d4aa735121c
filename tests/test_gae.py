"""GAE: loop == matrix == plain double loop; lambda=0 -> TD error; lambda=1 -> MC advantage; == SB3."""
import numpy as np
import pytest
import torch

from lib.rl.gae import compute_gae, gae_reference_loop, normalize_advantages, td_errors
from lib.rl.returns import discounted_returns


def random_data(rng, T=40, N=5, p_term=0.08, p_trunc=0.05):
    r = rng.normal(size=(T, N))
    v = rng.normal(size=(T, N))
    lv = rng.normal(size=N)
    u = rng.random((T, N))
    term = (u < p_term).astype(float)
    trunc = ((u >= p_term) & (u < p_term + p_trunc)).astype(float)
    fv = rng.normal(size=(T, N))
    return r, v, lv, term, trunc, fv


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.7)])
def test_gae_matches_plain_loop_and_matrix(seed, gamma, lam):
    r, v, lv, term, trunc, fv = random_data(np.random.default_rng(seed))
    adv, ret = compute_gae(r, v, lv, gamma, lam, term, trunc, fv)
    ref = gae_reference_loop(r.tolist(), v.tolist(), lv.tolist(), gamma, lam, term.tolist(), trunc.tolist(), fv.tolist())
    np.testing.assert_allclose(adv, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret, adv + v)
    adv_m, _ = compute_gae(r, v, lv, gamma, lam, term, trunc, fv, method="matrix")
    np.testing.assert_allclose(adv_m, adv, rtol=1e-9, atol=1e-9)


def test_lambda_zero_is_td_error():
    r, v, lv, term, trunc, fv = random_data(np.random.default_rng(1))
    adv, _ = compute_gae(r, v, lv, 0.97, 0.0, term, trunc, fv)
    delta = td_errors(r, v, lv, 0.97, term, trunc, fv)
    np.testing.assert_allclose(adv, delta)
    # by hand at one interior, non-terminal step
    t, n = 3, 0
    term[t, n] = trunc[t, n] = 0
    adv, _ = compute_gae(r, v, lv, 0.97, 0.0, term, trunc, fv)
    assert np.isclose(adv[t, n], r[t, n] + 0.97 * v[t + 1, n] - v[t, n])


def test_lambda_one_is_mc_advantage():
    rng = np.random.default_rng(2)
    r, v, lv, term, _, _ = random_data(rng, p_trunc=0.0)
    adv, ret = compute_gae(r, v, lv, 0.95, 1.0, term)
    G = discounted_returns(r, 0.95, dones=term, bootstrap=lv)
    np.testing.assert_allclose(adv, G - v, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret, G, rtol=1e-10, atol=1e-10)


def test_truncation_bootstraps_final_value_and_cuts_recursion():
    r = np.array([1.0, 1.0, 1.0])
    v = np.array([0.5, 0.4, 0.3])
    trunc = np.array([0, 1, 0])
    fv = np.array([0.0, 10.0, 0.0])
    adv, _ = compute_gae(r, v, 2.0, 0.9, 1.0, truncated=trunc, final_values=fv)
    assert np.isclose(adv[1], 1.0 + 0.9 * 10.0 - 0.4)           # bootstraps from the real final obs
    assert np.isclose(adv[0], (1.0 + 0.9 * 0.4 - 0.5) + 0.9 * adv[1])
    assert np.isclose(adv[2], 1.0 + 0.9 * 2.0 - 0.3)            # next episode: its own bootstrap
    adv_term, _ = compute_gae(r, v, 2.0, 0.9, 1.0, terminated=trunc)
    assert np.isclose(adv_term[1], 1.0 - 0.4)                    # terminal: nothing bootstrapped


@pytest.mark.parametrize("seed", range(3))
def test_equals_stable_baselines3_rollout_buffer(seed):
    """SB3 handles truncation by adding gamma * V(final obs) to the reward; same data -> same advantages."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    rng = np.random.default_rng(seed)
    T, N, gamma, lam = 32, 4, 0.98, 0.8
    r, v, lv, term, trunc, fv = random_data(rng, T, N)
    last_done = np.maximum(term[-1], trunc[-1])
    buf = RolloutBuffer(T, spaces.Box(-1, 1, (3,)), spaces.Discrete(2), device="cpu", gamma=gamma,
                        gae_lambda=lam, n_envs=N)
    done_prev = np.ones(N)  # SB3 marks the first step of a rollout as an episode start
    for t in range(T):
        r_sb3 = r[t] + gamma * fv[t] * trunc[t]
        buf.add(np.zeros((N, 3), np.float32), np.zeros((N, 1)), r_sb3, done_prev,
                torch.as_tensor(v[t], dtype=torch.float32), torch.zeros(N))
        done_prev = np.maximum(term[t], trunc[t])
    buf.compute_returns_and_advantage(torch.as_tensor(lv, dtype=torch.float32), last_done)
    adv, ret = compute_gae(r.astype(np.float32), v.astype(np.float32), lv.astype(np.float32), gamma, lam,
                           term, trunc, fv.astype(np.float32))
    np.testing.assert_allclose(adv, buf.advantages, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ret, buf.returns, rtol=1e-4, atol=1e-4)


def test_single_env_shapes_and_torch_input():
    adv, ret = compute_gae(torch.ones(5), torch.zeros(5), 0.0, 0.9, 0.9)
    assert adv.shape == (5,) and ret.shape == (5,)


def test_normalize_advantages():
    a = normalize_advantages(np.array([1.0, 2.0, 3.0]))
    assert abs(a.mean()) < 1e-12 and np.isclose(a.std(ddof=1), 1.0, atol=1e-6)
    t = normalize_advantages(torch.tensor([1.0, 5.0]))
    assert torch.isclose(t.mean(), torch.tensor(0.0))
    with pytest.raises(ValueError, match="at least 2"):
        normalize_advantages(np.array([1.0]))


def test_validation_errors():
    r = np.zeros((4, 2))
    with pytest.raises(ValueError, match="lam must be in"):
        compute_gae(r, r, np.zeros(2), 0.9, 1.5)
    with pytest.raises(TypeError, match="lam must be a number"):
        compute_gae(r, r, np.zeros(2), 0.9, "x")
    with pytest.raises(ValueError, match="gamma must be in"):
        compute_gae(r, r, np.zeros(2), 2.0, 0.5)
    with pytest.raises(ValueError, match="values has shape"):
        compute_gae(r, np.zeros((3, 2)), np.zeros(2), 0.9, 0.5)
    with pytest.raises(ValueError, match="last_values has shape"):
        compute_gae(r, r, np.zeros(3), 0.9, 0.5)
    with pytest.raises(ValueError, match="need final_values"):
        compute_gae(r, r, np.zeros(2), 0.9, 0.5, truncated=np.ones((4, 2)))
    with pytest.raises(ValueError, match="both terminated and truncated"):
        compute_gae(r, r, np.zeros(2), 0.9, 0.5, np.ones((4, 2)), np.ones((4, 2)), r)
    with pytest.raises(ValueError, match="only 0/1"):
        compute_gae(r, r, np.zeros(2), 0.9, 0.5, terminated=np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="method must be"):
        compute_gae(r, r, np.zeros(2), 0.9, 0.5, method="fast")
    with pytest.raises(ValueError, match="empty"):
        compute_gae(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(2), 0.9, 0.5)
    with pytest.raises(TypeError, match="numeric"):
        compute_gae(np.array(["a", "b"]), np.zeros(2), 0.0, 0.9, 0.5)
