"""lib.exercises: the checker pattern accepts the vetted implementation, rejects wrong ones with
a readable message (expected vs got, on which input), never raises on the reader's errors."""
import numpy as np
import pytest

from lib import exercises as ex
from lib.rl.policy_gradient import score_function
from lib.rl.returns import discounted_returns


def test_check_function_accepts_reference():
    report = ex.check_function(np.cumsum, np.cumsum, lambda rng: {"a": rng.normal(size=5)}, name="cumsum",
                               verbose=False)
    assert report and report.passed and report.trials == 25
    assert "matches" in str(report)


def test_check_function_reports_difference_with_input():
    report = ex.check_function(lambda a: np.cumsum(a) + (a > 1.5), np.cumsum,
                               lambda rng: {"a": rng.normal(size=5)}, name="cumsum", verbose=False)
    assert not report
    assert "expected" in report.message and "got" in report.message and "on input a=" in report.message
    assert report.failing_input is not None


def test_check_function_reports_exceptions_as_messages():
    def broken(a):
        raise ZeroDivisionError("oops")

    report = ex.check_function(broken, np.cumsum, lambda rng: {"a": rng.normal(size=3)}, name="c", verbose=False)
    assert not report and "raised ZeroDivisionError: oops" in report.message


def test_check_function_rejects_non_callable_and_shape_mismatch(capsys):
    report = ex.check_function(42, np.cumsum, lambda rng: {"a": rng.normal(size=3)}, name="c")
    assert not report and "expected a function" in report.message
    assert "NOT YET" in str(report)
    assert capsys.readouterr().out == ""      # the report shows itself once: it is not printed
    ex.check_function(42, np.cumsum, lambda rng: {"a": rng.normal(size=3)}, name="c", verbose=True)
    assert "NOT YET" in capsys.readouterr().out
    report = ex.check_function(lambda a: a[:-1], np.cumsum, lambda rng: {"a": rng.normal(size=3)}, name="c",
                               verbose=False)
    assert "shape" in report.message


def test_check_function_copies_inputs():
    def mutating(a):
        a[:] = 0
        return np.cumsum(a)

    # the reference sees the original input, the candidate a copy: the mutation is caught as a difference
    report = ex.check_function(mutating, np.cumsum, lambda rng: {"a": rng.normal(size=3) + 5}, name="c",
                               verbose=False)
    assert not report


def test_compare_variants():
    assert ex.compare([1, 2], [1, 2]) is None
    assert "items" in ex.compare((np.ones(2), 1), (np.ones(2),))
    assert ex.compare({"a": 1.0}, {"a": 1.0}) is None
    assert "keys" in ex.compare({"a": 1.0}, {"b": 1.0})
    assert "NaN" in ex.compare(np.ones(2), np.array([1.0, np.nan]))
    assert "expected" in ex.compare("x", "y")


def test_part1_checkers_accept_lib_and_reject_wrong():
    assert ex.check_softmax_policy_grad_log(score_function, trials=5)
    assert not ex.check_softmax_policy_grad_log(lambda theta, state, action: np.zeros_like(theta), trials=5)
    assert ex.check_reward_to_go(lambda rewards, gamma: discounted_returns(rewards, gamma), trials=5)
    assert not ex.check_reward_to_go(lambda rewards, gamma: np.cumsum(rewards), trials=5)


def test_coverage_checker():
    from lib.bookmap import coverage_by_stage

    assert ex.check_coverage_by_stage(coverage_by_stage, trials=5)
    assert not ex.check_coverage_by_stage(lambda nodes: {n.stage: 1.0 for n in nodes}, trials=10)


def test_trials_must_be_positive():
    with pytest.raises(ValueError):
        ex.check_function(np.cumsum, np.cumsum, lambda rng: {"a": np.ones(2)}, name="c", trials=0)


def test_unattempted_stub_is_reported_once_as_not_attempted():
    def stub(a):
        raise NotImplementedError  # your code here

    report = ex.check_function(stub, np.cumsum, lambda rng: {"a": rng.normal(size=3)}, name="c")
    assert not report and not report.attempted
    assert str(report) == "[NOT ATTEMPTED YET] c: not attempted yet: write the function above, then run this cell again"
    assert "a=" not in report.message            # no random input dump for a stub
    assert report._repr_markdown_().count("not attempted yet") == 1


def test_compare_accepts_array_likes_and_empty_results():
    # regression: an empty expected list raised; a nested list was rejected where an array is expected
    assert ex.compare([], np.array([])) is None
    assert ex.compare(np.array([]), []) is None
    assert ex.compare(np.arange(6.0).reshape(2, 3), [[0, 1, 2], [3, 4, 5]]) is None
    assert "shape" in ex.compare(np.zeros((2, 3)), [[0, 0, 0]])
    assert "values differ" in ex.compare(np.zeros((2, 2)), [[0, 0], [0, 1]])
    assert "array of numbers" in ex.compare(np.zeros(2), ["a", "b"])
    assert ex.compare([1.0, 2.0], (1, 2)) is None
    assert ex.compare(np.zeros(2), "nonsense") is not None   # never raises on reader output
