"""Best-of-N and majority vote (lib/align/bestofn.py): the exact estimators against enumeration
of every subset, ties, input validation, the best-of-N KL formula, and the shipped pool."""
import itertools

import numpy as np
import pytest
import torch

from lib.align import bestofn as B
from lib.llm.evalharness import pass_at_k
from lib.llm.reasoning import majority_vote, vote_accuracy


def _rows(rng, trials=40, m_max=8):
    for _ in range(trials):
        m = int(rng.integers(1, m_max + 1))
        yield m, rng.integers(0, 4, m).astype(float), rng.random(m)


def test_best_of_n_equals_enumeration_with_ties():
    rng = np.random.default_rng(0)
    for m, s, v in _rows(rng):                    # scores in {0..3}: many ties
        for n in range(1, m + 1):
            assert B.best_of_n_expected(s, v, n)[0] == pytest.approx(
                B.best_of_n_enumerate(s, v, n), abs=1e-12)


def test_selection_weights_are_a_distribution_and_ties_share_equally():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 3, (5, 9)).astype(float)
    for n in (1, 3, 9):
        w = B.selection_weights(s, n)
        assert np.allclose(w.sum(1), 1.0) and (w >= 0).all()
        for q in range(5):                         # equal scores, equal weights
            for a, b in itertools.combinations(range(9), 2):
                if s[q, a] == s[q, b]:
                    assert w[q, a] == pytest.approx(w[q, b])
    assert np.allclose(B.selection_weights(s, 1), 1 / 9)         # n = 1: one uniform draw
    w = B.selection_weights(s, 9)                  # n = M: the pool's best, shared by its ties
    assert np.allclose(w, (s == s.max(1, keepdims=True)) / (s == s.max(1, keepdims=True)).sum(1, keepdims=True))
    assert np.allclose(B.selection_weights(np.zeros(4), 2), 0.25)   # all tied: uniform


def test_distinct_scores_give_the_order_statistic_formula():
    # the r-th lowest of M (r = 0..M-1) is kept with probability C(r, n-1) / C(M, n)
    from math import comb

    s = np.array([0.3, -1.0, 2.0, 0.1, 5.0, 4.0])
    order = np.argsort(np.argsort(s))
    for n in range(1, 7):
        w = B.selection_weights(s, n)[0]
        assert np.allclose(w, [comb(int(r), n - 1) / comb(6, n) for r in order])


def test_oracle_best_of_n_is_unbiased_pass_at_k():
    rng = np.random.default_rng(2)
    for m in (1, 5, 20, 32):
        hits = rng.random((6, m)) < 0.4
        for k in range(1, m + 1):
            got = B.best_of_n_expected(hits, hits, k)
            want = [pass_at_k(m, int(c), k) for c in hits.sum(1)]
            assert np.allclose(got, want, atol=1e-12)


def test_proxy_of_the_kept_answer_is_non_decreasing_in_n():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(20, 16)).round(1)        # with ties
    prev = -np.inf
    for n in range(1, 17):
        cur = B.best_of_n_expected(s, s, n)
        assert (cur >= prev - 1e-12).all()
        prev = cur


def test_majority_vote_equals_enumeration():
    rng = np.random.default_rng(4)
    for _ in range(60):
        m = int(rng.integers(1, 10))
        ans = [None if x < 0 else int(x) for x in rng.integers(-1, 4, m)]
        truth = int(rng.integers(0, 4))
        got = B.majority_vote_expected([ans], [truth], list(range(1, m + 1)))[0]
        want = [B.majority_vote_enumerate(ans, truth, n) for n in range(1, m + 1)]
        assert np.allclose(got, want, atol=1e-12), (ans, truth)


def test_majority_vote_ties_are_uniform_as_majority_vote_on_a_random_order():
    # lib.llm.reasoning.majority_vote keeps the tied answer seen first; over every order of
    # every subset that is a uniform tie-break
    ans, truth = [1, 1, 2, 2, 3, None], 2
    for n in range(1, 7):
        wins = [majority_vote([ans[i] for i in perm]) == truth
                for sub in itertools.combinations(range(6), n)
                for perm in itertools.permutations(sub)]
        assert B.majority_vote_expected([ans], [truth], [n])[0, 0] == pytest.approx(np.mean(wins))


def test_majority_vote_matches_vote_accuracy_on_average():
    rng = np.random.default_rng(5)
    answers = [[int(x) for x in rng.choice([3, 3, 3, 5, 5, 7, 9], 12)] for _ in range(30)]
    truth = [3] * 30
    exact = B.majority_vote_expected(answers, truth, [5])[:, 0]
    mc = vote_accuracy(answers, truth, 5, draws=400, rng=0)
    assert abs(exact.mean() - mc.mean()) < 0.02
    assert B.majority_vote_expected(answers, truth, [1])[:, 0] == pytest.approx(
        [np.mean([a == 3 for a in row]) for row in answers])


def test_majority_vote_edge_cases():
    assert B.majority_vote_expected([[None, None]], [1], [1, 2]).tolist() == [[0.0, 0.0]]
    assert B.majority_vote_expected([[4, 4, 4]], [4], [1, 3]).tolist() == [[1.0, 1.0]]
    assert B.majority_vote_expected([[4, 5]], [4], [2])[0, 0] == pytest.approx(0.5)  # a tie


def test_kl_formula_against_exact_discrete_kl():
    assert B.best_of_n_kl(1) == 0.0
    ns = np.array([1, 2, 4, 8, 16, 64])
    assert np.allclose(B.best_of_n_kl(ns), np.log(ns) - (ns - 1) / ns)
    K = 200_000                                    # a fine uniform grid: the continuous limit
    for n in ns:
        assert B.best_of_n_kl_exact(np.full(K, 1 / K), int(n)) == pytest.approx(
            B.best_of_n_kl(int(n)), abs=1e-3)
    rng = np.random.default_rng(6)
    for _ in range(20):                            # discrete: never above the formula
        p = rng.dirichlet(np.full(int(rng.integers(2, 30)), 0.5))
        for n in (2, 5, 20):
            assert 0 <= B.best_of_n_kl_exact(p, n) <= B.best_of_n_kl(n) + 1e-12
    # best-of-2 of a fair coin: keep heads w.p. 3/4 -> KL = 3/4 log(3/2) + 1/4 log(1/2)
    assert B.best_of_n_kl_exact([0.5, 0.5], 2) == pytest.approx(0.75 * np.log(1.5) + 0.25 * np.log(0.5))


def test_pool_kl_is_exact_and_near_the_iid_formula_for_small_n():
    s = np.arange(8.0)
    for n in (1, 2, 4, 8):
        w = B.selection_weights(s, n)[0]
        assert B.pool_kl(s, n)[0] == pytest.approx(float((w[w > 0] * np.log(8 * w[w > 0])).sum()))
        # without replacement concentrates more than i.i.d. best-of-n from the same 8 outcomes
        assert B.pool_kl(s, n)[0] >= B.best_of_n_kl_exact(np.full(8, 1 / 8), n) - 1e-12
    assert B.pool_kl(s, 8)[0] == pytest.approx(np.log(8))      # n = M: the best, surely
    assert B.pool_kl(np.zeros(5), 3)[0] == pytest.approx(0.0)   # one outcome: nothing moves
    big = np.arange(2000.0)                        # n << M: the i.i.d. formula
    for n in (2, 4, 8):
        assert B.pool_kl(big, n)[0] == pytest.approx(B.best_of_n_kl(n), abs=2e-3)


def test_validation():
    with pytest.raises(ValueError, match="exceeds"):
        B.selection_weights(np.zeros(3), 4)
    with pytest.raises(ValueError, match="int >= 1"):
        B.selection_weights(np.zeros(3), 0)
    with pytest.raises(ValueError, match="int >= 1"):
        B.best_of_n_expected(np.zeros(3), np.zeros(3), 1.5)
    with pytest.raises(ValueError, match="shape"):
        B.best_of_n_expected(np.zeros(3), np.zeros(4), 1)
    with pytest.raises(ValueError, match="finite"):
        B.selection_weights([0.0, np.nan], 1)
    with pytest.raises(TypeError):
        B.selection_weights(["a", object()], 1)
    with pytest.raises(ValueError, match="same number"):
        B.majority_vote_expected([[1, 2], [1]], [1, 1], [1])
    with pytest.raises(ValueError, match="one answer list"):
        B.majority_vote_expected([[1, 2]], [1, 2], [1])
    with pytest.raises(ValueError, match="exceeds"):
        B.majority_vote_expected([[1, 2]], [1], [3])
    with pytest.raises(ValueError, match="probability"):
        B.best_of_n_kl_exact([0.5, 0.6], 2)
    with pytest.raises(ValueError):
        B.best_of_n_kl(0)
    with pytest.raises(TypeError):
        B.accuracy_curves("pool", [1])


@pytest.fixture(scope="module")
def shipped():
    return B.load_pool(with_meta=True)


def test_shipped_pool_matches_its_meta(shipped):
    pool, meta = shipped
    assert meta["kind"] == "bestofn-pool" and meta["command"].startswith("python -m lib.align.bestofn")
    assert pool.scores.shape == (meta["metrics"]["questions"], meta["sampling"]["m"])
    curves = B.accuracy_curves(pool, [1, pool.M])
    m = meta["metrics"]
    assert curves["single"][:, 0].mean() == pytest.approx(m["accuracy_single"])
    assert curves["oracle"][:, 1].mean() == pytest.approx(m[f"pass_at_{pool.M}"])
    assert curves["rm"][:, 1].mean() == pytest.approx(m[f"rm_best_of_{pool.M}"])
    assert curves["majority"][:, 1].mean() == pytest.approx(m[f"majority_at_{pool.M}"])


def test_shipped_pool_reloads_by_resampling_a_block(shipped):
    from lib.align.reward import load_reward_model
    from lib.align.tasks import chain_arithmetic_task
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    pool, meta = shipped
    task = chain_arithmetic_task()
    assert [p.expression for p in pool.problems] == [p.expression for p in task.held_out]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                       # as the pool was made
    try:
        live = B.sample_pool(load_model(B.POOL_POLICY), load_tokenizer(), load_reward_model(),
                             task.held_out, meta["sampling"]["m"], meta["seed"],
                             meta["sampling"]["block"], blocks=[1])
    finally:
        torch.set_num_threads(threads)
    b = meta["sampling"]["block"]
    # another CPU may, rarely, flip a sampled token: answer by answer, scores where texts agree
    same = np.array([x == y for r, s in zip(live.texts, pool.texts[b:2 * b]) for x, y in zip(r, s)])
    assert same.mean() >= 0.95
    assert np.allclose(live.scores.ravel()[same], pool.scores[b:2 * b].ravel()[same], atol=1e-4)


def test_sample_pool_validation():
    with pytest.raises(ValueError, match="at least one problem"):
        B.sample_pool(torch.nn.Linear(1, 1), None, None, [])
    with pytest.raises(ValueError, match="m must be >= 2"):
        B.sample_pool(torch.nn.Linear(1, 1), None, None, [object()], m=1)


def test_load_pool_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m lib.align.bestofn"):
        B.load_pool(tmp_path)


def test_weighted_vote():
    assert B.weighted_vote([1, 2, 2, None], [3.0, 1.0, 1.0, 9.0]) == 1       # heaviest total
    assert B.weighted_vote([1, 2, 2], [1.0, 1.0, 1.0]) == 2                  # equal weights: a vote
    assert B.weighted_vote([5, 7], [2.0, 2.0]) == 5                          # tie: first seen
    assert B.weighted_vote([None, None], [1.0, 1.0]) is None
    rng = np.random.default_rng(7)
    for _ in range(50):                            # equal weights = lib's majority vote
        ans = [None if x < 0 else int(x) for x in rng.integers(-1, 4, int(rng.integers(1, 9)))]
        assert B.weighted_vote(ans, np.ones(len(ans))) == majority_vote(ans)
    with pytest.raises(ValueError, match="one weight per answer"):
        B.weighted_vote([1, 2], [1.0])
    with pytest.raises(ValueError, match=">= 0"):
        B.weighted_vote([1, 2], [1.0, -1.0])
