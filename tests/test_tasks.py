"""lib.align.tasks: the fact-chaining task's splits, the error kinds and the paired gain."""
import numpy as np
import pytest


def test_fact_chain_data_and_task_splits():
    from lib.data import arithmetic_facts, arithmetic_problems, fact_chain_problems, is_fact_chain
    from lib.align.tasks import chain_arithmetic_task, completion_text, prompt_text, reward

    facts = arithmetic_facts()
    assert len(facts) == 674 == len({p.expression for p in facts})
    assert {p.expression for p in arithmetic_problems(500, seed=3, min_ops=1, max_ops=1)} <= {p.expression for p in facts}
    chain = fact_chain_problems(50, seed=1)
    assert all(p.n_steps == 2 and is_fact_chain(p) for p in chain)
    assert not is_fact_chain("15 + 19 - 3")          # 15 + 19 = 34, and 34 - 3 is not a fact
    with pytest.raises(ValueError, match="n_ops"):
        fact_chain_problems(3, n_ops=1)
    task = chain_arithmetic_task()
    sets = [set(p.expression for p in task.split(s)) for s in ("cold_start", "rl_train", "held_out")]
    assert [len(s) for s in sets] == [100, 1000, 200]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert chain_arithmetic_task() == task and task.describe()["held_out"]["n"] == 200
    p = task.held_out[0]
    assert prompt_text(p) == f"Q: What is {p.expression}?\nA:"
    assert reward(p, completion_text(p)) == 1.0 and reward(p, " The answer is -1.") == 0.0
    with pytest.raises(ValueError, match="split"):
        task.split("test")


def test_error_kind_classifies_by_first_faulty_step():
    from lib.align.tasks import ERROR_KINDS, error_kind
    from lib.data import ArithProblem

    p = ArithProblem.from_expression("17 + 6 * 2")                         # 6 * 2 = 12. 17 + 12 = 29.
    cases = {
        " 6 * 2 = 12. 17 + 12 = 29. The answer is 29.": "correct",
        " 6 * 2 = 14. 17 + 14 = 31. The answer is 31.": "fact wrong",
        " 17 + 6 = 23. 23 * 2 = 46. The answer is 46.": "wrong operands",   # left to right: precedence ignored
        " 6 * 2 = 12. 17 + 12 = 30. The answer is 30.": "fact wrong",
        " 6 * 2 = 12. 17 + 2 = 19. The answer is 19.": "wrong operands",    # result not carried forward
        " 6 * 2 = 12. 17 + 12 = 29. The answer is 28.": "answer not last result",
        " 6 * 2 = 12. The answer is 12.": "malformed",
        " 6 * 2 = 12. 17 + 12 = 29.": "malformed",
    }
    for text, kind in cases.items():
        assert error_kind(p, text) == kind, text
    assert set(cases.values()) == set(ERROR_KINDS)
    with pytest.raises(TypeError):
        error_kind(p, None)


def test_paired_gain_matches_a_paired_t_statistic():
    from scipy import stats

    from lib.align.tasks import paired_gain

    rng = np.random.default_rng(0)
    before = rng.random((50, 8)) < 0.4
    after = rng.random((50, 8)) < 0.55
    gain, z = paired_gain(before, after)
    assert gain == pytest.approx(after.mean() - before.mean())
    assert z == pytest.approx(stats.ttest_rel(after.mean(1), before.mean(1)).statistic)
    assert paired_gain(before, before) == (0.0, 0.0)
    with pytest.raises(ValueError, match="same questions"):
        paired_gain(before, after[:10])
