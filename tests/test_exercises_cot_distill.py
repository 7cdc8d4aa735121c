"""The CoT-distillation exercise checker accepts correct answers and rejects wrong ones."""
from lib.data import parse_answer, verify_answer
from lib.data.arithmetic import as_problem
from lib.exercises import cot_distill as ex


def test_rejection_filter_checker_accepts_correct_answers():
    assert ex.check_rejection_filter(ex.rejection_filter_reference, trials=10)

    def by_verifier(expressions, traces):
        return [i for i, (q, t) in enumerate(traces) if verify_answer(expressions[q], t)]

    assert ex.check_rejection_filter(by_verifier)


def test_rejection_filter_checker_rejects_wrong_ones():
    def first_answer(expressions, traces):  # reads the first "answer is", not the last
        import re

        out = []
        for i, (q, t) in enumerate(traces):
            m = re.search(r"answer is (-?\d+)", t)
            if m and int(m.group(1)) == as_problem(expressions[q]).answer:
                out.append(i)
        return out

    assert not ex.check_rejection_filter(first_answer)

    def keeps_everything(expressions, traces):
        return list(range(len(traces)))

    assert not ex.check_rejection_filter(keeps_everything)

    def keeps_answered(expressions, traces):  # format check only, no correctness
        return [i for i, (_, t) in enumerate(traces) if parse_answer(t) is not None]

    assert not ex.check_rejection_filter(keeps_answered)

    def stub(expressions, traces):
        raise NotImplementedError

    rep = ex.check_rejection_filter(stub)
    assert not rep and not rep.attempted
