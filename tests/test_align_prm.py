"""Outcome and process reward models (lib/align/prm.py): step splitting, exact and Math-Shepherd
labels, training examples and loss masks, scoring, reranking, step search, the shipped models."""
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from lib.align import prm
from lib.align.tasks import prompt_text
from lib.data import ArithProblem


@pytest.fixture(scope="module")
def tok():
    from lib.llm.tokenizer import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="module")
def policy():
    from lib.llm.checkpoint import load_model

    torch.set_num_threads(1)
    return load_model("tiny-lm-arith-sft")


P = ArithProblem.from_expression("17 + 6 * 2")          # 6 * 2 = 12. 17 + 12 = 29. answer 29


def sol(tok, text, problem=P, eos=True):
    ids = tok.encode(text) + ([tok.eos_id] if eos else [])
    return prm.make_solution(tok, problem, tok.encode(prompt_text(problem)), ids)


def test_make_solution_splits_at_dots(tok):
    s = sol(tok, " 6 * 2 = 12. 17 + 12 = 29. The answer is 29.")
    assert s.steps == (" 6 * 2 = 12.", " 17 + 12 = 29.", " The answer is 29.")
    assert s.outcome and s.text == " 6 * 2 = 12. 17 + 12 = 29. The answer is 29."
    dot = tok.encode(".")[0]
    assert all(s.ids[p] == dot for p in s.positions) and s.ids[-1] == tok.eos_id
    # everything after the first EOS is cut; a trailing piece without "." is not a step
    s2 = prm.make_solution(tok, P, s.prompt_ids, list(s.completion_ids) + tok.encode(" 1 + 1 = 2."))
    assert s2 == s
    s3 = sol(tok, " 6 * 2 = 12. 17 + 12", eos=False)
    assert s3.steps == (" 6 * 2 = 12.",) and not s3.outcome
    with pytest.raises(TypeError):
        prm.make_solution(tok, "17 + 6 * 2", s.prompt_ids, s.completion_ids)


@pytest.mark.parametrize("text, labels", [
    (" 6 * 2 = 12. 17 + 12 = 29. The answer is 29.", [True, True, True]),
    # a wrong fact, then a step that is right given the written number: bad from the first error on
    (" 6 * 2 = 13. 17 + 13 = 30. The answer is 30.", [False, False, False]),
    (" 6 * 2 = 12. 17 + 12 = 28. The answer is 28.", [True, False, False]),
    (" 6 * 2 = 12. 17 + 12 = 29. The answer is 28.", [True, True, False]),
    # wrong precedence
    (" 17 + 6 = 23. 23 * 2 = 46. The answer is 46.", [False, False, False]),
    # a skipped step with the right number is still not a finished solution
    (" 6 * 2 = 12. The answer is 29.", [True, False]),
    # anything after the answer, or a sentence that is neither a step nor an answer, is bad
    (" 6 * 2 = 12. 17 + 12 = 29. The answer is 29. 1 + 1 = 2.", [True, True, True, False]),
    (" 6 * 2 = 12. So. 17 + 12 = 29. The answer is 29.", [True, False, False, False]),
])
def test_exact_step_labels(tok, text, labels):
    s = sol(tok, text)
    assert prm.exact_step_labels(P, s.steps) == labels


def test_prefix_labels_and_validation():
    assert prm.prefix_labels([True, False, True, True]) == [True, False, False, False]
    assert prm.prefix_labels([]) == []
    with pytest.raises(TypeError):
        prm.prefix_labels([1, 0])
    with pytest.raises(TypeError):
        prm.exact_step_labels(P, "6 * 2 = 12.")
    with pytest.raises(TypeError):
        prm.exact_step_labels("17 + 6 * 2", [" 6 * 2 = 12."])


def test_examples_batch_and_loss_mask(tok):
    good = sol(tok, " 6 * 2 = 12. 17 + 12 = 29. The answer is 29.")
    bad = sol(tok, " 6 * 2 = 13. 17 + 13 = 30. The answer is 30.")
    orm = prm.orm_examples([good, bad])
    assert [e[1] for e in orm] == [(len(good.ids) - 1,), (len(bad.ids) - 1,)]
    assert [e[2] for e in orm] == [(1.0,), (0.0,)]
    labels = [prm.exact_step_labels(P, s.steps) for s in (good, bad)]
    ex = prm.prm_examples([good, bad], labels)
    assert ex[0][1] == good.positions and ex[1][2] == (0.0, 0.0, 0.0)
    ids, attn, targets, mask = prm.example_batch(ex, tok.pad_id)
    assert ids.shape == attn.shape == targets.shape == mask.shape
    assert int(mask.sum()) == 6 and float(targets.sum()) == 3.0
    assert (attn[mask.bool()] == 1).all()                    # read positions are real tokens
    with pytest.raises(ValueError, match="labels"):
        prm.prm_examples([good], [[True, True]])
    with pytest.raises(ValueError, match="one label list"):
        prm.prm_examples([good, bad], labels[:1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prm.prm_examples([good], [[0.5, 1.5, 0.0]])
    with pytest.raises(ValueError, match="outside"):
        prm.example_batch([(good.ids, (len(good.ids),), (1.0,))], tok.pad_id)
    with pytest.raises(ValueError, match="one target per position"):
        prm.example_batch([(good.ids, (1, 2), (1.0,))], tok.pad_id)
    # a solution without steps gives no PRM example
    empty = sol(tok, " hello", eos=True)
    assert prm.prm_examples([empty], [[]]) == []


def test_score_loss_reads_only_masked_positions(tok, policy):
    good = sol(tok, " 6 * 2 = 12. 17 + 12 = 29. The answer is 29.")
    bad = sol(tok, " 6 * 2 = 13. 17 + 13 = 30. The answer is 30.")
    ex = prm.prm_examples([good, bad], [prm.exact_step_labels(P, s.steps) for s in (good, bad)])
    rm = prm.new_score_model(policy, seed=3)
    assert rm.head.bias is not None and float(rm.head.bias.detach()) == 0.0
    assert rm.lm is not policy
    ids, attn, targets, mask = prm.example_batch(ex, tok.pad_id)
    loss, stats = prm.score_loss(rm, ids, attn, targets, mask)
    with torch.no_grad():
        z = rm.token_scores(ids, attn)
    m = mask.bool()
    manual = torch.nn.functional.binary_cross_entropy(torch.sigmoid(z[m]), targets[m])
    assert torch.allclose(loss, manual, atol=1e-6)
    # targets where the mask is 0 do not matter
    t2 = targets.clone()
    t2[~m] = 1.0
    assert torch.allclose(prm.score_loss(rm, ids, attn, t2, mask)[0], loss)
    assert 0 <= stats["accuracy"] <= 1
    with pytest.raises(ValueError, match="no position"):
        prm.score_loss(rm, ids, attn, targets, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="shape"):
        prm.score_loss(rm, ids, attn, targets[:, :-1], mask)


def test_training_fits_a_few_examples(tok, policy):
    good = sol(tok, " 6 * 2 = 12. 17 + 12 = 29. The answer is 29.")
    bad = sol(tok, " 6 * 2 = 13. 17 + 13 = 30. The answer is 30.")
    ex = prm.prm_examples([good, bad], [prm.exact_step_labels(P, s.steps) for s in (good, bad)])
    cfg = prm.ScoreConfig(steps=30, batch_size=2, lr=3e-4, head_lr=3e-3, warmup_steps=2, seed=0)
    run = prm.train_score_model(cfg, ex, tok.pad_id, policy)
    losses = run.log.series("loss")
    assert losses[-1] < 0.5 * losses[0]
    lg = prm.step_logits(run.model, [good, bad], tok.pad_id)
    assert (lg[0] > 0).all() and (lg[1] < 0).all()
    with pytest.raises(ValueError):
        prm.ScoreConfig(steps=0)
    with pytest.raises(ValueError):
        prm.ScoreConfig(steps=5, warmup_steps=6)
    with pytest.raises(TypeError):
        prm.train_score_model({"steps": 3}, ex, tok.pad_id, policy)


def test_aggregate_metrics_rerank():
    p = [0.9, 0.2, 0.5]
    assert prm.aggregate_steps(p, "min") == 0.2
    assert prm.aggregate_steps(p, "prod") == pytest.approx(0.09)
    assert prm.aggregate_steps(p, "last") == 0.5
    assert prm.aggregate_steps([], "min") == 0.0
    with pytest.raises(ValueError):
        prm.aggregate_steps(p, "max")
    with pytest.raises(ValueError):
        prm.aggregate_steps([1.2], "min")
    m = prm.binary_metrics([2.0, -1.0, 0.5, -3.0], [1, 0, 0, 0])
    assert m["accuracy"] == 0.75 and m["auc"] == 1.0 and m["base_rate"] == 0.25
    assert np.isnan(prm.binary_metrics([1.0, 2.0], [1, 1])["auc"])
    with pytest.raises(ValueError):
        prm.binary_metrics([1.0], [2])
    correct = np.array([[False, True, False], [False, False, False]])
    perfect = correct.astype(float)
    assert prm.rerank_accuracy(perfect, correct, 3).tolist() == [1.0, 0.0]
    # n = 1 is the share of right solutions
    assert prm.rerank_accuracy(perfect, correct, 1, draws=3000, rng=0)[0] == pytest.approx(1 / 3, abs=0.03)
    with pytest.raises(ValueError):
        prm.rerank_accuracy(perfect, correct, 4)
    with pytest.raises(ValueError):
        prm.rerank_accuracy(perfect[0], correct[0], 1)


def test_label_agreement():
    a = prm.label_agreement([[True, False], [True]], [np.array([0.5, 0.25]), np.array([0.0])])
    assert a["steps"] == 3
    assert a["false_good"] == pytest.approx(1 / 3) and a["false_bad"] == pytest.approx(1 / 3)
    assert a["hard_accuracy"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        prm.label_agreement([[True]], [np.array([0.5, 0.5])])


def test_shepherd_estimates(tok, policy):
    good = sol(tok, " 6 * 2 = 12. 17 + 12 = 29. The answer is 29.")
    bad = sol(tok, " 6 * 2 = 13. 17 + 13 = 30. The answer is 30.")
    g = torch.Generator().manual_seed(0)
    est = prm.shepherd_estimates(policy, tok, [good, bad, good], 4, g)
    assert [e.shape for e in est] == [(3,)] * 3
    for e in est:
        assert set(np.round(e * 4).tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert est[0][-1] == 1.0 and est[1][-1] == 0.0           # the answer sentence: the outcome
    np.testing.assert_array_equal(est[0], est[2])            # equal prefixes are rolled out once
    with pytest.raises(ValueError):
        prm.shepherd_estimates(policy, tok, [good], 0)


def test_step_search_counts(tok, policy):
    probs = [ArithProblem.from_expression(e) for e in ("17 + 6 * 2", "3 * 4 - 5", "12 - 7 + 9")]
    rm = prm.new_score_model(policy, seed=0)
    out = prm.prm_step_search(rm, policy, tok, probs, 3, torch.Generator().manual_seed(0), max_steps=4)
    assert (out["calls"] % 3 == 0).all()
    assert (out["calls"] >= 3).all() and (out["calls"] <= 12).all() and (out["tokens"] >= out["calls"]).all()
    from lib.data import verify_answer

    assert out["correct"].tolist() == [verify_answer(p, t) for p, t in zip(probs, out["texts"])]
    with pytest.raises(ValueError):
        prm.prm_step_search(rm, policy, tok, probs, 0)


def test_shipped_models_reproduce_recorded_metrics(tok):
    from lib.llm.checkpoint import CHECKPOINT_DIR

    meta = json.loads((CHECKPOINT_DIR / prm.PRM_NAME / "meta.json").read_text())
    assert meta["command"].startswith("python -m lib.align.prm")
    sols = prm.reload_solutions(meta, tok)
    assert len(sols) == meta["reload_check"]["n"]
    models = {k: prm.load_prm(k) for k in prm.KINDS}
    got = prm.evaluate_models(models, sols, tok.pad_id)
    want = meta["reload_check"]["metrics"]
    for kind in prm.KINDS:
        for part in got[kind]:
            for key in ("accuracy", "auc", "base_rate"):
                assert got[kind][part][key] == pytest.approx(want[kind][part][key], abs=0.02), (kind, part, key)
    # the held-out metrics the book reports: both PRMs rank steps better than chance
    for kind in ("prm-exact", "prm-shepherd"):
        assert meta["metrics"]["held_out"][kind]["steps"]["auc"] > 0.6


def test_load_prm_refuses_bad_input(tmp_path):
    from lib.llm.checkpoint import CHECKPOINT_DIR

    with pytest.raises(ValueError, match="kind"):
        prm.load_prm("prm")
    with pytest.raises(FileNotFoundError):
        prm.load_prm("orm", tmp_path / "nothing")
    folder = tmp_path / "copy"
    shutil.copytree(CHECKPOINT_DIR / prm.PRM_NAME, folder)
    data = bytearray((folder / "orm.safetensors").read_bytes())
    data[-1] ^= 1
    (folder / "orm.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        prm.load_prm("orm", folder)
    assert isinstance(prm.load_prm("prm-exact", folder), prm.RewardModel)


def test_cli_smoke(tmp_path, capsys):
    assert prm.main(["--out", str(tmp_path / "p"), "--questions", "6", "--steps", "2", "--no-progress"]) == 0
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["command"].startswith("python -m lib.align.prm") and meta["data"]["solutions"] == 6 * prm.TRAIN_SAMPLES
    assert set(meta["weights_sha256"]) == set(prm.KINDS)
    assert dataclasses.asdict(prm.PRM_CONFIG)["steps"] == prm.PRM_CONFIG.steps
    assert "agreement" in capsys.readouterr().out
