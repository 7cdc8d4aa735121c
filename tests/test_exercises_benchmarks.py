"""The benchmark appendix's exercise checker accepts a correct answer and rejects wrong ones."""
import numpy as np

from lib.exercises.benchmarks import check_steps_to_threshold


def _right(steps, returns, threshold):
    return next((s for s, r in zip(steps, returns) if r >= threshold), None)


def test_accepts_a_correct_answer_and_array_returns():
    assert check_steps_to_threshold(_right)
    assert check_steps_to_threshold(lambda steps, returns, threshold:
                                    _right(np.asarray(steps), np.asarray(returns), threshold))


def test_rejects_wrong_answers():
    # strict ">" misses the boundary trials; "last step" and "-1 for never" are wrong too
    assert not check_steps_to_threshold(
        lambda steps, returns, threshold: next((s for s, r in zip(steps, returns) if r > threshold),
                                               None))
    assert not check_steps_to_threshold(lambda steps, returns, threshold: steps[-1])
    rep = check_steps_to_threshold(lambda steps, returns, threshold: _right(steps, returns, threshold)
                                   or -1)
    assert not rep and "None" in rep.message


def test_stub_is_not_attempted():
    def stub(steps, returns, threshold):
        raise NotImplementedError

    rep = check_steps_to_threshold(stub)
    assert not rep and not rep.attempted
