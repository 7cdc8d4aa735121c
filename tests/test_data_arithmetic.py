"""lib.data.arithmetic: expressions evaluate as Python does; problems and their canonical steps."""
import numpy as np
import pytest

from lib.data import arithmetic_problems, check_steps, evaluate_expression, first_error, parse_answer, parse_steps



def test_evaluate_expression_matches_python():
    rng = np.random.default_rng(0)
    for _ in range(200):
        nums = rng.integers(0, 30, size=int(rng.integers(1, 6)))
        ops = rng.choice(["+", "-", "*"], size=len(nums) - 1)
        expr = str(nums[0]) + "".join(f" {o} {v}" for o, v in zip(ops, nums[1:]))
        assert evaluate_expression(expr) == eval(expr)  # noqa: S307 - trusted, generated here
    for bad in ("", "3 +", "3 / 4", "a + 1", "+ 3"):
        with pytest.raises(ValueError):
            evaluate_expression(bad)
    with pytest.raises(TypeError):
        evaluate_expression(3)


def test_problems_and_steps():
    probs = arithmetic_problems(300, seed=1)
    assert len({p.expression for p in probs}) == 300
    assert {p.n_steps for p in probs} == {1, 2, 3}
    for p in probs:
        assert p.answer == evaluate_expression(p.expression)
        assert all(0 <= s.result <= 999 for s in p.steps)
        assert parse_steps(p.cot_answer) == list(p.steps)
        assert parse_answer(p.cot_answer) == p.answer == parse_answer(p.direct_answer)
        assert all(check_steps(p, p.cot_answer))
        assert first_error(p, p.cot_answer) is None
    assert arithmetic_problems(5, seed=1) == probs[:5]
    other = arithmetic_problems(50, seed=2, exclude=[p.expression for p in probs])
    assert not {p.expression for p in other} & {p.expression for p in probs}
    with pytest.raises(ValueError):
        arithmetic_problems(-1)
    with pytest.raises(ValueError):
        arithmetic_problems(3, min_ops=3, max_ops=2)
