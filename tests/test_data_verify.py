"""lib.data.verify: the step and answer verifiers catch errors."""
import pytest

from lib.data import ArithProblem, Step, check_steps, first_error, parse_answer, parse_steps, verify_answer



def test_check_steps_detects_errors():
    p = ArithProblem.from_expression("3 + 4 * 2 - 5")
    assert p.cot_answer == "4 * 2 = 8. 3 + 8 = 11. 11 - 5 = 6. The answer is 6."
    # precedence violation, then a step on operands that are not there
    assert check_steps(p, "3 + 4 = 7. 7 * 2 = 14.") == [False, False]
    # wrong arithmetic; later steps judged given the written result
    assert check_steps(p, "4 * 2 = 9. 3 + 9 = 12. 12 - 5 = 7.") == [False, True, True]
    assert first_error(p, "4 * 2 = 8. 3 + 8 = 12. 12 - 5 = 7.") == 1
    # a different but valid order (left subtraction first is not allowed here: 8 - 5 is fine)
    assert check_steps("3 + 4 * 2 - 5", "4 * 2 = 8. 8 - 5 = 3. 3 + 3 = 6.") == [True, True, True]
    assert check_steps("10 - 4 - 3", "4 - 3 = 1.") == [False]           # not value preserving
    assert check_steps("3 * 4", [Step(3, "*", 4, 12)]) == [True]
    assert verify_answer(p, "blah. The answer is 6.")
    assert not verify_answer(p, "blah. The answer is 6.", require_steps=True)
    assert not verify_answer(p, "The answer is 5.")
    assert not verify_answer(p, "no answer here")
    assert parse_answer("The answer is 3. Actually the answer is -4") == -4
    assert parse_answer("nothing") is None
    with pytest.raises(TypeError):
        check_steps(p, [1, 2])
    with pytest.raises(TypeError):
        parse_steps(None)
    with pytest.raises(TypeError):
        verify_answer(3, "x")
