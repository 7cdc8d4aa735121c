"""Tests of lib.llm.reasoning (CoT, self-consistency, ToT, GoT) and the shipped direct-answer twin."""
import numpy as np
import pytest
import torch

from lib.data import ArithProblem, Step
from lib.llm.reasoning import (first_operation, graph_of_thoughts, majority_vote, mcnemar_exact,
                               sample_answers, step_value, tree_of_thoughts, vote_accuracy)


def test_majority_vote():
    assert majority_vote([3, None, 4, 4, 3]) == 3          # tie: the one seen first
    assert majority_vote([None, 5, 5, 7]) == 5
    assert majority_vote([None, None]) is None and majority_vote([]) is None


def test_vote_accuracy():
    answers = [[1, 1, 2], [2, 2, 2], [None, 3, 4], [4, 3, 3]]
    truth = [1, 2, 4, 4]
    one = vote_accuracy(answers, truth, 1, draws=3000, rng=0)
    np.testing.assert_allclose(one, [2 / 3, 1.0, 1 / 3, 1 / 3], atol=0.03)
    full = vote_accuracy(answers, truth, 3, draws=2000, rng=0)
    # the vote of all three: [None, 3, 4] is a tie, won by whichever comes first in the draw
    np.testing.assert_allclose(full, [1.0, 1.0, 0.5, 0.0], atol=0.04)
    with pytest.raises(ValueError):
        vote_accuracy(answers, truth, 4)
    with pytest.raises(ValueError):
        vote_accuracy(answers, [1, 2], 1)


def test_step_value_and_first_operation():
    p = ArithProblem.from_expression("17 + 6 * 2")
    assert step_value(p, [], " 6 * 2 = 12.") == 1.0
    assert step_value(p, [], " 17 + 6 = 23.") == 0.0           # wrong precedence
    assert step_value(p, [Step(6, "*", 2, 12)], " 17 + 12 = 29.") == 1.0
    assert step_value(p, [Step(6, "*", 2, 12), Step(17, "+", 12, 29)], " The answer is 29.") == 1.0
    assert step_value(p, [Step(6, "*", 2, 12), Step(17, "+", 12, 29)], " The answer is 30.") == 0.0
    assert step_value(p, [], " banana.") == 0.0
    assert first_operation("17 + 6 * 2") == ("6 * 2", 2)
    assert first_operation("3 - 1 + 2") == ("3 - 1", 0)
    with pytest.raises(ValueError):
        first_operation("3 +")


def test_mcnemar_exact():
    from scipy.stats import binomtest
    a = np.array([1, 1, 1, 0, 1, 1, 0, 1], bool)
    b = np.array([0, 0, 1, 0, 0, 1, 1, 0], bool)
    a_only, b_only, p = mcnemar_exact(a, b)
    assert (a_only, b_only) == (4, 1) and p == pytest.approx(binomtest(4, 5, 0.5).pvalue)
    assert mcnemar_exact(a, a) == (0, 0, 1.0)
    with pytest.raises(ValueError):
        mcnemar_exact(a, b[:3])


@pytest.fixture(scope="module")
def shipped():
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer
    torch.set_num_threads(1)
    return load_tokenizer(), load_model("tiny-lm-arith-sft")


def test_procedures_on_the_shipped_model(shipped):
    from lib.align.tasks import chain_arithmetic_task
    tok, model = shipped
    qs = list(chain_arithmetic_task().held_out[:6])
    g = torch.Generator().manual_seed(0)
    texts = sample_answers(model, tok, qs, 3, g)
    assert len(texts) == 6 and all(len(t) == 3 and all(isinstance(x, str) for x in t) for t in texts)
    answers, calls, sols = tree_of_thoughts(model, tok, qs, 2, g)
    assert len(answers) == 6 and (calls % 2 == 0).all() and (calls <= 8).all()
    assert all(isinstance(s, str) for s in sols)
    answers, calls = graph_of_thoughts(model, tok, qs, 3, g)
    assert (calls % 3 == 0).all() and (calls <= 6).all()
    # the model knows its facts: graph of thoughts solves most of these two-step questions
    assert sum(a == q.answer for a, q in zip(answers, qs)) >= 4
    with pytest.raises(ValueError):
        tree_of_thoughts(model, tok, qs, 0)
    with pytest.raises(TypeError):
        graph_of_thoughts(model, tok, ["1 + 2"], 1)


def test_direct_twin_checkpoint_reproduces_its_recorded_accuracy():
    """The shipped tiny-lm-arith-direct: hash, recipe, answers without steps, recorded accuracy."""
    from lib.llm.generate import greedy_accuracy
    from lib.align.sft import DIRECT_TWIN
    from lib.align.tasks import chain_arithmetic_task, encode_prompts
    from lib.data import parse_steps, verify_answer
    from lib.llm.checkpoint import CHECKPOINT_DIR, file_sha256, load_model
    from lib.llm.pretrain import tokenizer_sha256
    from lib.llm.tokenizer import load_tokenizer

    torch.set_num_threads(1)
    model, meta = load_model(DIRECT_TWIN, with_meta=True)
    assert meta["weights_sha256"] == file_sha256(CHECKPOINT_DIR / DIRECT_TWIN / "model.safetensors")
    assert meta["tokenizer_sha256"] == tokenizer_sha256()
    assert meta["answers"] == "direct" and "--direct" in meta["command"]
    twin = load_model("tiny-lm-arith-sft", with_meta=True)[1]
    assert meta["train_config"] == twin["train_config"] and meta["task"] == twin["task"]
    task = chain_arithmetic_task()
    assert meta["task"] == task.describe()
    tok = load_tokenizer()
    held = task.held_out
    texts = []

    def check(i, c):
        texts.append(tok.decode(c, skip_special_tokens=True))
        return verify_answer(held[i], texts[-1])

    g = greedy_accuracy(model, encode_prompts(tok, held), check, tok.eos_id, 32)
    assert g == pytest.approx(meta["metrics"]["after"]["held_out"]["greedy"], abs=0.011)
    assert sum(bool(parse_steps(t)) for t in texts) <= 2     # it answers without steps
    assert meta["metrics"]["after"]["facts"]["greedy"] > 0.9
