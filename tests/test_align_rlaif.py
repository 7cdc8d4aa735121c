"""lib.align.rlaif: AI labels and frozen-feature reward heads (RLAIF), the constitution's critic,
reviser and independent checker (Constitutional AI), and rule-based rewards."""
import numpy as np
import pytest
import torch
from helpers import small_lm

from lib.align import reward as R
from lib.align import rlaif as A
from lib.data import ArithProblem

PAD, EOS = 96, 95


def _pairs(n=8, seed=0):
    g = np.random.default_rng(seed)
    return [(list(g.integers(3, 90, size=3)), list(g.integers(3, 90, size=3)) + [EOS],
             list(g.integers(3, 90, size=2)) + [EOS]) for _ in range(n)]


# ----------------------------------------------------------------------------- RLAIF
def test_pair_features_are_what_the_head_reads():
    lm = small_lm()
    rm = R.RewardModel.from_lm(lm, head_std=1.0).eval()
    pairs = _pairs()
    f = A.pair_features(lm, pairs, PAD)
    assert f.shape == (8, 2, 32)
    s = torch.einsum("npd,d->np", f, rm.head.weight[0].detach())
    torch.testing.assert_close(s, R.pair_scores(rm, pairs, PAD), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(A.pair_features(rm, pairs, PAD), f)


def test_ai_labels_and_relabel():
    rm = R.RewardModel.from_lm(small_lm(), head_std=1.0)
    pairs = _pairs()
    lab = A.ai_labels(rm, pairs, PAD)
    s = R.pair_scores(rm, pairs, PAD)
    assert np.array_equal(lab, (s[:, 0] > s[:, 1]).numpy().astype(int))
    oriented = A.relabel(pairs, lab)
    s2 = R.pair_scores(rm, oriented, PAD)
    assert (s2[:, 0] >= s2[:, 1]).all()                      # the judge now prefers every first answer
    with pytest.raises(ValueError, match="labels"):
        A.relabel(pairs, [1, 0])


def test_fit_probe_head_is_the_bradley_terry_optimum():
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(6, generator=g)
    f = torch.randn(300, 2, 6, generator=g)
    p = torch.sigmoid((f[:, 0] - f[:, 1]) @ w_true * 3)
    labels = (torch.rand(300, generator=g) < p).long().numpy()
    w = A.fit_probe_head(f, labels, c=100.0)
    cos = float(torch.nn.functional.cosine_similarity(w, w_true, dim=0))
    assert cos > 0.9
    # at the optimum the gradient of the (weakly regularised) BT loss in w vanishes
    wt = w.double().clone().requires_grad_()
    d = (f[:, 0] - f[:, 1]).double()
    sign = torch.tensor(2 * labels - 1, dtype=torch.float64)
    loss = torch.nn.functional.softplus(-sign * (d @ wt)).sum() * 2 + 0.5 * (wt @ wt) / 100.0
    loss.backward()
    assert float(wt.grad.abs().max()) < 0.05                  # a sum over 600 terms: ~0 at the optimum
    # flipping every label flips the head
    torch.testing.assert_close(A.fit_probe_head(f, 1 - labels, c=100.0), -w, atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="N, 2, d"):
        A.fit_probe_head(torch.zeros(3, 3, 2))
    rm = A.probe_reward_model(small_lm(), torch.ones(32))
    assert torch.equal(rm.head.weight[0], torch.ones(32))
    with pytest.raises(ValueError, match="head"):
        A.probe_reward_model(small_lm(), torch.ones(5))


# ----------------------------------------------------------------------------- Constitutional AI
PROB = ArithProblem.from_expression("19 - 10 + 18")


def test_critique_names_each_broken_principle():
    assert A.critique(PROB.expression, " 19 - 10 = 9. 9 + 18 = 27. The answer is 27.") == []
    found = dict(A.critique(PROB.expression, " 19 - 10 = 1. 10 + 18 = 28. The answer is 28."))
    assert set(found) == {"true equations", "carry forward"}
    found = dict(A.critique(PROB.expression, " 19 - 10 = 9. 9 + 18 = 27. The answer is 26."))
    assert set(found) == {"answer from the work"}
    found = dict(A.critique(PROB.expression, " 19 - 10 = 9. 9 + 18 = 27. The answer is 27. The answer is 27."))
    assert set(found) == {"one clean answer"}
    assert "one clean answer" in dict(A.critique(PROB.expression, " I do not know"))
    with pytest.raises(TypeError):
        A.critique(PROB.expression, None)


@pytest.mark.parametrize("text, expect", [
    (" 19 - 10 = 10. 10 + 18 = 29. The answer is 29.", " 19 - 10 = 9. 9 + 18 = 27. The answer is 27."),
    (" 19 - 10 = 1. 10 + 18 = 28. The answer is 28.", " 19 - 10 = 9. 9 + 18 = 27. The answer is 27."),
    (" 19 - 10 = 9. 9 + 18 = 27. The answer is 26.", " 19 - 10 = 9. 9 + 18 = 27. The answer is 27."),
    (" 19 - 10 = 9. 9 + 18 = 27. The answer is 27.", " 19 - 10 = 9. 9 + 18 = 27. The answer is 27."),
])
def test_revise(text, expect):
    assert A.revise(PROB.expression, text) == expect
    assert not any(A.violations(PROB, A.revise(PROB.expression, text)).values())


def test_violations_agree_with_the_critic_on_examples():
    texts = [" 19 - 10 = 1. 10 + 18 = 28. The answer is 28.", " 19 - 10 = 9. 9 + 18 = 27. The answer is 26.",
             " 19 - 10 = 9. 9 + 18 = 27. The answer is 27.", " 19 - 10 = 9. 9 + 18 = 27. The answer is 27. Yes"]
    for t in texts:
        assert {k for k, v in A.violations(PROB, t).items() if v} == {k for k, _ in A.critique(PROB.expression, t)}
    assert A.revise(PROB.expression, "no steps") == "no steps"


def test_cai_data_and_violation_rates():
    from lib.llm.tokenizer import load_tokenizer

    tok = load_tokenizer()
    answers = [[(tuple(tok.encode(t)) + (tok.eos_id,), t) for t in
                (" 19 - 10 = 9. 9 + 18 = 27. The answer is 27.", " 19 - 10 = 1. 10 + 18 = 28. The answer is 28.")]]
    d = A.cai_data([PROB], answers, tok)
    assert d["n_revised"] == 1 and len(d["sl"]) == 2 and len(d["pairs"]) == 1
    p, chosen, rejected = d["pairs"][0]
    assert tok.decode(chosen, skip_special_tokens=True) == " 19 - 10 = 9. 9 + 18 = 27. The answer is 27."
    assert rejected == list(answers[0][1][0])
    bad = [[(tuple(tok.encode(" 4 * - 24 = 12. The answer is 12.")), " 4 * - 24 = 12. The answer is 12.")]]
    d2 = A.cai_data([PROB], bad, tok)
    assert d2["n_unrepairable"] == 1 and d2["sl"] == [] and d2["pairs"] == []
    r = A.violation_rates([PROB], answers)
    assert r["any"] == 0.5 and r["true equations"] == 0.5 and r["flags"].shape == (2, 4)


# ----------------------------------------------------------------------------- rule-based rewards
def test_rule_features_and_fit_rbr():
    assert A.rule_features(PROB.expression, " 19 - 10 = 9. 9 + 18 = 27. The answer is 27.").tolist() == [1, 1, 1, 1]
    assert A.rule_features(PROB.expression, " 19 - 10 = 1. 10 + 18 = 28. The answer is 28.").tolist() == [0, 0, 1, 1]
    g = np.random.default_rng(0)
    x = (g.random((400, 4)) < 0.7).astype(float)
    rm = g.normal(size=400)
    logit = 3 * x[:, 0] + 1.5 * x[:, 2] + 1.0 * rm - 3
    y = (g.random(400) < 1 / (1 + np.exp(-logit))).astype(int)
    f = A.fit_rbr(x, rm, y, c=10.0)
    assert f.weights[0] > f.weights[2] > abs(f.weights[1])
    assert 0.5 < f.rm_weight < 1.6
    assert np.allclose(f.rule_score(x), x @ f.weights + f.bias)
    assert np.allclose(f.combined(x, rm), f.rm_weight * rm + x @ f.combo_weights + f.combo_bias)
    with pytest.raises(ValueError, match="both classes"):
        A.fit_rbr(x, rm, np.ones(400))
    with pytest.raises(ValueError, match="features"):
        A.fit_rbr(x[:, 0], rm, y)
