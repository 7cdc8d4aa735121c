"""The Part 9 best-of-N exercise checkers accept correct answers and reject wrong ones."""
import itertools

import numpy as np

from lib.exercises import best_of_n as ex


def test_weighted_vote_checker():
    assert ex.check_weighted_vote(ex.weighted_vote_reference, trials=10)

    def ok(answers, weights):
        total = {}
        for a, w in zip(answers, weights):
            if a is not None:
                total[a] = total.get(a, 0.0) + w
        if not total:
            return None
        best = max(total.values())
        return next(a for a in total if total[a] == best)

    assert ex.check_weighted_vote(ok)

    def unweighted(answers, weights):                 # counts votes, ignores weights
        valid = [a for a in answers if a is not None]
        if not valid:
            return None
        return max(valid, key=valid.count)

    assert not ex.check_weighted_vote(unweighted)

    def heaviest_single(answers, weights):            # best-of-n, not a vote
        cand = [(w, -i, a) for i, (a, w) in enumerate(zip(answers, weights)) if a is not None]
        return max(cand)[2] if cand else None

    assert not ex.check_weighted_vote(heaviest_single)

    def last_on_ties(answers, weights):
        total = {}
        for a, w in zip(answers, weights):
            if a is not None:
                total[a] = total.get(a, 0.0) + w
        if not total:
            return None
        best = max(total.values())
        return [a for a in total if total[a] == best][-1]

    assert not ex.check_weighted_vote(last_on_ties)

    def stub(answers, weights):
        raise NotImplementedError

    rep = ex.check_weighted_vote(stub)
    assert not rep and not rep.attempted


def test_best_of_n_accuracy_checker():
    assert ex.check_best_of_n_accuracy(ex.best_of_n_accuracy_reference, trials=10)

    def brute(scores, correct, n):                    # every subset, ties shared equally
        s, c = np.asarray(scores), np.asarray(correct, float)
        vals = []
        for sub in itertools.combinations(range(len(s)), n):
            sub = list(sub)
            vals.append(c[sub][s[sub] == s[sub].max()].mean())
        return float(np.mean(vals))

    assert ex.check_best_of_n_accuracy(brute)

    def pool_best(scores, correct, n):                # ignores n: the pool's best answer
        s, c = np.asarray(scores), np.asarray(correct, float)
        return float(c[s == s.max()].mean())

    assert not ex.check_best_of_n_accuracy(pool_best)

    def optimistic_ties(scores, correct, n):          # a tie counts as right if any is right
        s, c = np.asarray(scores), np.asarray(correct, float)
        vals = []
        for sub in itertools.combinations(range(len(s)), n):
            sub = list(sub)
            vals.append(c[sub][s[sub] == s[sub].max()].max())
        return float(np.mean(vals))

    assert not ex.check_best_of_n_accuracy(optimistic_ties)

    def stub(scores, correct, n):
        raise NotImplementedError

    rep = ex.check_best_of_n_accuracy(stub)
    assert not rep and not rep.attempted
