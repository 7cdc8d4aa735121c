import numpy as np

from lib.exercises.rl_deep import (check_c51_projection, check_dqn_target, check_expected_svf, check_planning_updates,
                                   check_pure_nash, check_reinforce_loss)
from lib.rl.distributional import categorical_projection
from lib.rl.dqn import dqn_targets
from lib.rl.irl import expected_svf
from lib.rl.marl import MatrixGame, pure_nash


def _raises(*a, **k):
    raise RuntimeError("not yet")


def test_dqn_target_checker():
    assert check_dqn_target(lambda **kw: dqn_targets(**kw), trials=10)
    assert not check_dqn_target(lambda rewards, dones, next_q_target, gamma, next_q_online=None:
                                np.asarray(rewards) + gamma * np.asarray(next_q_target).max(1), trials=10)  # ignores dones
    assert not check_dqn_target(_raises, trials=3)


def test_reinforce_loss_checker():
    from lib.rl.returns import discounted_returns
    good = lambda log_probs, rewards, gamma: float(-(log_probs * discounted_returns(rewards, gamma)).sum())  # noqa: E731
    bad = lambda log_probs, rewards, gamma: float(-(log_probs * np.sum(rewards)).sum())  # total return  # noqa: E731
    assert check_reinforce_loss(good, trials=10)
    assert not check_reinforce_loss(bad, trials=10)
    assert not check_reinforce_loss(_raises, trials=3)


def test_pure_nash_checker():
    def good(A, B):
        return pure_nash(MatrixGame("x", A, B, tuple(range(A.shape[0])), tuple(range(A.shape[1]))))

    def bad(A, B):   # only checks the row player
        return [(i, j) for i in range(A.shape[0]) for j in range(A.shape[1]) if A[i, j] >= A[:, j].max()]

    assert check_pure_nash(good, trials=10)
    assert not check_pure_nash(bad, trials=25)
    assert not check_pure_nash(_raises, trials=3)


def test_svf_checker():
    assert check_expected_svf(expected_svf, trials=10)
    assert not check_expected_svf(lambda P, policies, p0: expected_svf(P, policies, p0) / len(policies), trials=10)
    assert not check_expected_svf(_raises, trials=3)


def test_planning_checker():
    def good(Q, model_r, model_s, model_d, pairs, alpha, gamma):
        Q = np.array(Q, dtype=float)
        for s, a in pairs:
            Q[s, a] += alpha * (model_r[s, a] + gamma * (1 - model_d[s, a]) * Q[model_s[s, a]].max() - Q[s, a])
        return Q

    def bad(Q, model_r, model_s, model_d, pairs, alpha, gamma):   # forgets the end flag
        Q = np.array(Q, dtype=float)
        for s, a in pairs:
            Q[s, a] += alpha * (model_r[s, a] + gamma * Q[model_s[s, a]].max() - Q[s, a])
        return Q

    assert check_planning_updates(good, trials=10)
    assert not check_planning_updates(bad, trials=25)
    assert not check_planning_updates(_raises, trials=3)


def test_c51_checker():
    assert check_c51_projection(lambda **kw: categorical_projection(**kw), trials=10)

    def no_clip(next_probs, rewards, dones, gamma, support):   # nearest-atom rounding instead of splitting
        z = np.asarray(support)
        out = np.zeros_like(np.asarray(next_probs))
        for b in range(len(out)):
            tz = np.clip(rewards[b] + gamma * (1 - dones[b]) * z, z[0], z[-1])
            idx = np.abs(tz[:, None] - z[None, :]).argmin(1)
            np.add.at(out[b], idx, next_probs[b])
        return out

    assert not check_c51_projection(no_clip, trials=10)
    assert not check_c51_projection(_raises, trials=3)
