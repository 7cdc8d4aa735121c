"""Each Part 6 (basics) checker accepts the lib implementation and rejects wrong or crashing ones."""
import numpy as np
import pytest

from lib.exercises import rl_basics as X
from lib.rl.bandits import ucb_scores
from lib.rl.markov import stationary_eigen
from lib.rl.mc_td import epsilon_greedy_probs
from lib.rl.returns import discounted_returns, episode_returns


def _raise(*args, **kwargs):
    raise RuntimeError("boom")


def _td0_ok(V, s, r, s_next, terminated, alpha, gamma):
    V = np.array(V, float)
    V[s] += alpha * ((r if terminated else r + gamma * V[s_next]) - V[s])
    return V


def _q_ok(Q, s, a, r, s_next, terminated, alpha, gamma):
    Q = np.array(Q, float)
    Q[s, a] += alpha * ((r if terminated else r + gamma * Q[s_next].max()) - Q[s, a])
    return Q


def _nstep_ok(rewards, v_boot, gamma):
    n = len(rewards)
    return float(sum(gamma ** k * r for k, r in enumerate(rewards)) + gamma ** n * v_boot)


CASES = [
    (X.check_episode_totals, episode_returns, lambda rewards, dones: [float(np.sum(rewards))]),
    (X.check_returns_with_dones, lambda rewards, dones, gamma: discounted_returns(rewards, gamma, dones),
     lambda rewards, dones, gamma: discounted_returns(rewards, gamma)),  # ignores episode ends
    (X.check_q_from_v, lambda P, R, V, gamma: R + gamma * P @ V, lambda P, R, V, gamma: R + P @ V),
    (X.check_stationary, stationary_eigen, lambda P: np.full(len(P), 1 / len(P))),
    (X.check_epsilon_greedy_probs, epsilon_greedy_probs,
     lambda q_row, epsilon: np.eye(len(q_row))[np.argmax(q_row)] * (1 - epsilon) + epsilon / len(q_row)),
    (X.check_ucb_scores, ucb_scores, lambda Q, N, t, c: np.asarray(Q) + c * np.sqrt(np.log(t) / (np.asarray(N) + 1))),
    (X.check_td0_update, _td0_ok,
     lambda V, s, r, s_next, terminated, alpha, gamma: _td0_ok(V, s, r, s_next, False, alpha, gamma)),
    (X.check_nstep_return, _nstep_ok, lambda rewards, v_boot, gamma: _nstep_ok(rewards, 0.0, gamma)),
    (X.check_q_learning_update, _q_ok,
     lambda Q, s, a, r, s_next, terminated, alpha, gamma: _q_ok(Q, s, a, r, s_next, terminated, alpha, 1.0)),
]


@pytest.mark.parametrize("checker, good, bad", CASES, ids=[c[0].__name__ for c in CASES])
def test_checker_accepts_good_rejects_bad(checker, good, bad, capsys):
    assert checker(good)
    report = checker(bad)
    assert not report and "NOT YET" in str(report)
    report = checker(_raise)
    assert not report and "RuntimeError" in report.message
    assert not checker("not a function")
