"""CoT distillation (lib.align.cot_distill): config and input checks, the verifier filter on
hand-made traces, the students' training sets, a miniature run, and the shipped artefact."""
import numpy as np
import pytest
import torch

from lib.align import cot_distill as cd
from lib.align.tasks import chain_arithmetic_task
from lib.llm.checkpoint import CHECKPOINT_DIR
from lib.llm.tokenizer import load_tokenizer

TASK = chain_arithmetic_task()


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def _hand_traces(tok):
    p0, p1 = TASK.rl_train[0], TASK.rl_train[1]
    texts = [" " + p0.cot_answer,                                   # right
             " " + p0.cot_answer.replace(f"is {p0.answer}.", f"is {p0.answer + 1}."),  # wrong answer
             f" 1 + 1 = 3. The answer is {p1.answer}.",             # right answer, wrong step
             " no answer here.",                                    # malformed
             " " + p1.cot_answer]                                   # right
    q = np.array([0, 0, 1, 1, 1])
    comps = [tok.encode(t) + [tok.eos_id] for t in texts]
    return [p0, p1], cd.Traces(q, comps, texts)


@pytest.mark.parametrize("kw", [dict(traces_per_question=0), dict(n_questions=0), dict(lr=0.0),
                                dict(seed=-1), dict(sizes=(600, 200)), dict(sizes=(0,)),
                                dict(sizes=(5, 5)), dict(student_steps=1.5)])
def test_config_rejects_bad_values(kw):
    with pytest.raises(ValueError):
        cd.CoTDistillConfig(**kw)


def test_filter_and_judge_on_hand_made_traces(tok):
    probs, tr = _hand_traces(tok)
    with pytest.raises(ValueError, match="judge"):
        cd.trace_stats(probs, tr)
    verdicts = cd.judge_traces(probs, tr)
    assert verdicts.tolist() == [True, False, True, False, True]
    assert cd.filter_traces(verdicts).tolist() == [0, 2, 4]
    assert cd.filter_traces(np.zeros(3, dtype=bool)).tolist() == []
    st = cd.trace_stats(probs, tr, tok)
    assert st["yield"] == pytest.approx(3 / 5) and st["accepted"] == 3 and st["coverage"] == 1.0
    # the wrong-step trace passes the outcome filter but not the step checker
    assert st["steps_ok_given_correct"] == pytest.approx(2 / 3)
    assert sum(st["errors"].values()) == pytest.approx(1.0)
    assert st["errors"]["correct"] == pytest.approx(3 / 5) and st["errors"]["malformed"] == pytest.approx(1 / 5)


def test_input_validation(tok):
    probs, tr = _hand_traces(tok)
    with pytest.raises(ValueError, match="bool"):
        cd.filter_traces([1, 0, 1])
    with pytest.raises(ValueError, match="1-D"):
        cd.filter_traces(np.zeros((2, 2), dtype=bool))
    with pytest.raises(TypeError, match="ArithProblem"):
        cd.judge_traces(["1 + 2 * 3"], tr)
    with pytest.raises(ValueError, match="only 1 problems"):
        cd.judge_traces(probs[:1], tr)
    with pytest.raises(TypeError, match="Traces"):
        cd.judge_traces(probs, [(0, "x")])
    with pytest.raises(ValueError, match="judge"):
        cd.distill_sets(probs, tr, tok)
    cd.judge_traces(probs, tr)
    with pytest.raises(ValueError, match="size 3"):
        cd.distill_sets(probs, tr, tok, sizes=(3,))
    tr.correct = np.zeros(5, dtype=bool)
    with pytest.raises(ValueError, match="accepted no trace"):
        cd.distill_sets(probs, tr, tok)
    with pytest.raises(ValueError, match="k must"):
        cd.teacher_traces(torch.nn.Linear(1, 1), tok, probs, 0)
    with pytest.raises(ValueError, match="hits_to_json"):
        cd.hits_from_json({"greedy": [1, 0]})


def test_distill_sets(tok):
    probs, tr = _hand_traces(tok)
    cd.judge_traces(probs, tr)
    sets = cd.distill_sets(probs, tr, tok, sizes=(1, 2), rng=0)
    assert set(sets) == {"filtered", "unfiltered", "answer-only", "filtered-1", "filtered-2"}
    n = len(sets["filtered"])
    assert n == 3 and len(sets["unfiltered"]) == n and len(sets["answer-only"]) == n   # equal counts
    assert [len(sets["filtered-1"]), len(sets["filtered-2"])] == [1, 2]
    filt = {tuple(c) for _, c in sets["filtered"]}
    assert all(tuple(c) in filt for k in ("filtered-1", "filtered-2") for _, c in sets[k])
    # answer-only: the bare answer of the filtered traces' questions, no rationale
    decoded = [tok.decode(c, skip_special_tokens=True) for _, c in sets["answer-only"]]
    assert decoded == [f" The answer is {probs[q].answer}." for q in (0, 1, 1)]
    assert all(c[-1] == tok.eos_id for s in sets.values() for _, c in s)
    # unfiltered draws from all traces, without replacement
    all_comps = [tuple(c) for c in tr.completions]
    picked = [all_comps.index(tuple(c)) for _, c in sets["unfiltered"]]
    assert len(set(picked)) == n


def test_hits_json_round_trip_and_compare():
    rng = np.random.default_rng(0)
    h = {"greedy": rng.random(30) < 0.5, "sampled": rng.random((30, 4)) < 0.5}
    back = cd.hits_from_json(cd.hits_to_json(h))
    assert np.array_equal(back["greedy"], h["greedy"]) and np.array_equal(back["sampled"], h["sampled"])
    better = {"greedy": np.ones(30, dtype=bool), "sampled": np.ones((30, 4), dtype=bool)}
    c = cd.compare(better, h)
    assert c["b_only"] == 0 and c["a_only"] == int((~h["greedy"]).sum())
    assert c["gain"] == pytest.approx(1 - h["sampled"].mean()) and c["p_sampled"] < 1e-3
    assert cd.compare(h, h)["p_greedy"] == 1.0


def test_miniature_run(tok):
    from lib.llm.checkpoint import load_model

    task = chain_arithmetic_task(n_cold_start=2, n_rl_train=6, n_held_out=4)
    cfg = cd.CoTDistillConfig(traces_per_question=2, n_questions=6, facts_steps=2, student_steps=2,
                              batch_size=4, sizes=(1,), eval_samples=2, max_new_tokens=24)
    teacher = load_model(cd.TEACHER)
    run = cd.train_cot_distill(cfg, task=task, teacher=teacher, tokenizer=tok)
    assert len(run.traces) == 12 and run.traces.correct.shape == (12,)
    assert set(run.students) == {"filtered", "unfiltered", "answer-only", "filtered-1"}
    assert set(run.hits) == set(run.students) | {"teacher", "student base"}
    assert all(h["greedy"].shape == (4,) and h["sampled"].shape == (4, 2) for h in run.hits.values())
    assert [u["student"] for u in run.log.updates] == ["traces", *run.students]
    with pytest.raises(ValueError, match="exceeds"):
        cd.train_cot_distill(cd.CoTDistillConfig(n_questions=7), task=task, teacher=teacher, tokenizer=tok)


def test_shipped_artefact_reproduces_recorded_hits(tok):
    """Reload the shipped filtered student and the teacher; their greedy answers on a subset of the
    held-out questions reproduce the recorded per-question hits (greedy decoding is deterministic;
    another CPU may flip a near-tie, hence the allowance of one question)."""
    from lib.llm.checkpoint import load_meta, load_model

    folder = CHECKPOINT_DIR / cd.ARTEFACT
    res = cd.load_results(folder)
    meta = load_meta(folder / "student-filtered")
    assert meta["command"].startswith("python -m lib.align.cot_distill")
    assert [p.expression for p in TASK.held_out] == res["held_out_questions"]
    sub = list(range(0, 200, 5))  # 40 questions
    probs = [TASK.held_out[i] for i in sub]
    for name, model in (("filtered", load_model(folder / "student-filtered")),
                        ("teacher", load_model(cd.TEACHER))):
        got = cd.evaluate_hits(model, tok, probs, samples=1, seed=0)["greedy"]
        want = res["hits"][name]["greedy"][sub]
        assert (got != want).sum() <= 1, name
    acc = res["accuracy"]
    for name, h in res["hits"].items():
        assert acc[name]["greedy"] == pytest.approx(h["greedy"].mean())
        assert acc[name]["sampled"] == pytest.approx(h["sampled"].mean())
