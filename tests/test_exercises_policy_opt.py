"""Part 7 exercise checkers accept the lib implementations and reject wrong ones (and ones that raise)."""
import numpy as np

from lib.exercises.policy_opt import (check_clip_objective, check_dpg, check_gae, check_group_advantages,
                                     check_is_estimate)


def _gae_ok(rewards, values, last_value, dones, gamma, lam):
    from lib.rl.gae import compute_gae
    return compute_gae(rewards, values, last_value, gamma, lam, terminated=dones)[0]


def _gae_no_done(rewards, values, last_value, dones, gamma, lam):
    return _gae_ok(rewards, values, last_value, np.zeros_like(dones), gamma, lam)


def _raises(*args, **kwargs):
    raise RuntimeError("boom")


def test_gae_checker():
    assert check_gae(_gae_ok, trials=10)
    assert not check_gae(_gae_no_done, trials=25)
    assert not check_gae(_raises, trials=3)


def test_clip_checker():
    good = lambda ratio, advantage, clip_eps: np.minimum(ratio * advantage,
                                                         np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantage)
    no_min = lambda ratio, advantage, clip_eps: np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantage
    assert check_clip_objective(good)
    assert not check_clip_objective(no_min)
    assert not check_clip_objective(_raises)


def test_is_checker():
    def good(fx, logp, logq, self_normalized):
        w = np.exp(logp - logq)
        return float((w * fx).sum() / w.sum()) if self_normalized else float((w * fx).mean())
    wrong = lambda fx, logp, logq, self_normalized: float((np.exp(logq - logp) * fx).mean())
    assert check_is_estimate(good)
    assert not check_is_estimate(wrong)
    assert not check_is_estimate(_raises)


def test_group_checker():
    def good(rewards, variant):
        c = rewards - rewards.mean(1, keepdims=True)
        return c / (rewards.std(1, ddof=1, keepdims=True) + 1e-4) if variant == "std" else c
    pop_std_no_eps = lambda rewards, variant: (rewards - rewards.mean(1, keepdims=True)) / rewards.std(1, keepdims=True)
    assert check_group_advantages(good)
    assert not check_group_advantages(pop_std_no_eps)
    assert not check_group_advantages(_raises)


def test_dpg_checker():
    def good(W, K, S):
        return (-2 * (S @ W.T - S @ K.T)).T @ S / len(S)

    no_mean = lambda W, K, S: (-2 * (S @ W.T - S @ K.T)).T @ S          # sum, not mean
    wrong_sign = lambda W, K, S: (2 * (S @ W.T - S @ K.T)).T @ S / len(S)
    assert check_dpg(good)
    assert not check_dpg(no_mean)
    assert not check_dpg(wrong_sign)
    assert not check_dpg(_raises, trials=3)
