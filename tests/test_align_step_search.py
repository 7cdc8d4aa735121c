"""MCTS over reasoning steps (lib.align.step_search): the state protocol on a hand-made
question with a stub model, call counting, validation, lock-step batching on the real model,
and the shipped sweep."""

import numpy as np
import pytest

from lib import mcts as MC
from lib.align import step_search as S
from lib.data import ArithProblem

PROB = ArithProblem.from_expression("5 + 9 * 2")  # 9 * 2 = 18. 5 + 18 = 23. The answer is 23.
RIGHT = (" 9 * 2 = 18.", " 5 + 18 = 23.", " The answer is 23.")
# the stub model's proposals after each partial solution: two distinct sentences, the right one
# second; anything else gets a wrong step then a wrong answer
NEXT = {
    "": [" 5 + 9 = 14.", " 9 * 2 = 18."],
    " 9 * 2 = 18.": [" 5 + 18 = 24.", " 5 + 18 = 23."],
    " 9 * 2 = 18. 5 + 18 = 23.": [" The answer is 24.", " The answer is 23."],
}


class Stub:
    """A 'model' that continues text with fixed sentences and records every prompt."""

    def __init__(self):
        self.prompts = []

    def continue_texts(self, prompts, stop, max_new_tokens):
        out = []
        for p in prompts:
            self.prompts.append((p, stop))
            text = p.split("A:", 1)[1]
            if stop == "end":
                out.append(" 5 + 18 = 23. The answer is 23." if text == RIGHT[0]
                           else " The answer is 7.")
                continue
            opts = NEXT.get(text, [" 1 + 1 = 2.", " The answer is 7."])
            out.append(opts[sum(1 for q, s in self.prompts if q == p and s == stop) % 2 - 1])
        return out


def run(value="steps", sims=24, k=4, selection="uct", value_fn=None, record=True):
    stub = Stub()
    cfg = S.StepSearchConfig(simulations=sims, k=k, value=value, selection=selection, c=0.5)
    res = S.StepSearch(PROB, stub, cfg, value_fn).run(record=record)
    return res, stub


def test_state_protocol_dedupe_priors_and_calls():
    stub = Stub()
    search = S.StepSearch(PROB, stub, S.StepSearchConfig(k=4))
    root = S.StepState(search)
    assert root.to_play() == 0 and not root.is_terminal() and root.text == ""
    acts = root.legal_actions()
    assert acts == [" 5 + 9 = 14.", " 9 * 2 = 18."]  # 4 samples, 2 distinct, first-seen order
    assert root.priors() == [0.5, 0.5] and search.calls == 4
    assert root.legal_actions() == acts and search.calls == 4  # sampled once, then kept
    child = root.apply(RIGHT[0])
    assert child.text == RIGHT[0] and child.sentences == (RIGHT[0],)
    with pytest.raises(ValueError, match="not one of"):
        root.apply(" 2 + 2 = 4.")
    done = S.StepState(search, RIGHT)
    assert done.is_terminal() and done.legal_actions() == [] and done.terminal_value() == 1.0
    assert S.StepState(search, (" 9 * 2 = 18", )).is_terminal()  # an unfinished sentence
    long = S.StepState(search, (" 1 + 1 = 2.",) * 4)
    assert long.is_terminal() and long.terminal_value() == 0.0  # max_steps, no answer
    assert search.calls == 4


def test_exact_step_value():
    v = S.exact_step_value
    assert v(PROB, "") == 1.0 and v(PROB, RIGHT[0]) == 1.0 and v(PROB, "".join(RIGHT)) == 1.0
    assert v(PROB, " 5 + 9 = 14.") == 0.0  # ignores precedence
    assert v(PROB, " 9 * 2 = 19.") == 0.0  # a false fact
    assert v(PROB, " 9 * 2 = 18. The answer is 18.") == 0.0  # answers before the last step
    assert v(PROB, " 9 * 2 = 18. hello.") == 0.0  # a sentence that is no step
    assert S.split_sentences(" a. b. c") == [" a.", " b.", " c"]
    with pytest.raises(TypeError):
        v("5 + 9 * 2", "")


@pytest.mark.parametrize("value", ["steps", "rollout"])
def test_mcts_finds_the_right_path(value):
    res, stub = run(value)
    assert tuple(n.action for n in res.path[1:]) == RIGHT
    assert res.text == "".join(RIGHT) and res.answer == 23 and res.correct
    assert not res.completed
    assert MC.tree_violations(res.root, res.iterations) == []
    # calls: k per created unfinished node (root included) + one rollout per unfinished leaf
    unfinished = [n for n in res.root.nodes() if not n.state.is_terminal()]
    rollouts = sum(1 for it in res.iterations
                   if it.expanded is not None and it.path and
                   not _node(res.root, it.expanded).state.is_terminal()) if value == "rollout" else 0
    assert res.calls == 4 * len(unfinished) + rollouts == len(stub.prompts)
    assert sum(s == "step" for _, s in stub.prompts) == 4 * len(unfinished)


def _node(root, nid):
    return next(n for n in root.nodes() if n.id == nid)


def test_deterministic_and_learned_value():
    a, _ = run("steps")
    b, _ = run("steps")
    assert [n.id for n in a.path] == [n.id for n in b.path] and a.calls == b.calls
    seen = []

    def prm(problem, text):
        seen.append(text)
        return float(all(s in RIGHT for s in S.split_sentences(text)))

    res, _ = run("learned", value_fn=prm)
    assert res.correct and seen and all(isinstance(t, str) for t in seen)
    # a value function that prefers the wrong steps leads the search astray
    res, _ = run("learned", value_fn=lambda p, t: 1.0 - prm(p, t))
    assert not res.correct
    with pytest.raises(ValueError, match="value_fn"):
        run("learned", value_fn=lambda p, t: float("nan"))


def test_puct_uses_merged_priors():
    res, stub = run(selection="puct", sims=30)
    assert res.correct and MC.tree_violations(res.root) == []
    kids = {ch.action: ch.prior for ch in res.root.children.values()}
    assert kids == {" 5 + 9 = 14.": 0.5, " 9 * 2 = 18.": 0.5}
    unfinished = [n for n in res.root.nodes() if not n.state.is_terminal()]
    assert res.calls == 4 * len(unfinished)  # PUCT creates all children: k calls each


def test_small_budget_completes_the_path():
    res, stub = run("steps", sims=1)
    # one iteration: the root's candidates (4 calls) and one child (4 calls); the walk stops at
    # that child and one sampled completion finishes the answer
    assert res.completed and res.calls == 9 and stub.prompts[-1][1] == "end"


def test_validation():
    with pytest.raises(ValueError):
        S.StepSearchConfig(value="prm")
    with pytest.raises(ValueError):
        S.StepSearchConfig(k=0)
    with pytest.raises(ValueError):
        S.StepSearchConfig(c=0.0)
    with pytest.raises(ValueError):
        S.StepSearchConfig(selection="greedy")
    cfg = S.StepSearchConfig()
    with pytest.raises(TypeError, match="ArithProblem"):
        S.StepSearch("5 + 9 * 2", Stub(), cfg)
    with pytest.raises(TypeError, match="continue_texts"):
        S.StepSearch(PROB, object(), cfg)
    with pytest.raises(TypeError, match="StepSearchConfig"):
        S.StepSearch(PROB, Stub(), MC.MCTSConfig())
    with pytest.raises(ValueError, match="value_fn"):
        S.StepSearch(PROB, Stub(), S.StepSearchConfig(value="learned"))

    class Short:
        def continue_texts(self, prompts, stop, max_new_tokens):
            return prompts[:1]

    with pytest.raises(ValueError, match="returned 1 texts"):
        S.StepSearch(PROB, Short(), cfg).run()
    with pytest.raises(TypeError):
        S.chosen_path("root")
    with pytest.raises(ValueError):
        S.baseline_curves({"hits": np.ones((2, 3), bool), "answers": [[1] * 3] * 2}, [1, 1], [4])
    with pytest.raises(ValueError, match="widths"):
        S.compare(None, None, [PROB], widths=())


def test_baseline_curves():
    hits = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    answers = [[3, 1, 1, 2], [5, 5, None, 6], [7, 7, 7, 7]]
    c = S.baseline_curves({"hits": hits, "answers": answers}, [3, 4, 7], [1, 2, 4])
    assert np.allclose(c["pass"][:, 0], hits.mean(1)) and np.allclose(c["single"], hits.mean(1)[:, None])
    assert np.allclose(c["pass"][:, 2], hits.any(1))
    assert c["vote"][1].max() == 0 and np.all(c["vote"][2] == 1)
    assert c["vote"][0, 2] == 0  # the vote of all four is 1, not 3


@pytest.fixture(scope="module")
def lm():
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    return load_model("tiny-lm-arith-sft"), load_tokenizer()


def test_lockstep_on_the_real_model(lm):
    from lib.align.tasks import chain_arithmetic_task

    model, tok = lm
    probs = list(chain_arithmetic_task().held_out[:5])
    cfg = S.StepSearchConfig(simulations=6, k=3, value="rollout")
    a = S.search_problems(model, tok, probs, cfg)
    b = S.search_problems(model, tok, probs, cfg)
    assert [r.text for r in a] == [r.text for r in b] and [r.calls for r in a] == [r.calls for r in b]
    for r, p in zip(a, probs):
        assert r.problem is p and r.calls >= cfg.k and MC.tree_violations(r.root) == []
        assert r.correct == (r.answer == p.answer)
    one = S.search_problem(model, tok, probs[0], cfg, record=True)
    assert MC.tree_violations(one.root, one.iterations) == []


def test_shipped_sweep_reloads_and_reproduces(lm):
    from lib.align.tasks import chain_arithmetic_task

    data, meta = S.load_sweep()
    assert meta["command"].startswith("python -m lib.align.step_search")
    q = len(data["questions"])
    assert q == meta["n_questions"] and len(data["hits"]) == q
    for v in ("steps", "rollout"):
        for k in data["widths"]:
            row = data["mcts"][f"{v}/{k}"]
            assert len(row["correct"]) == q
            assert np.isclose(np.mean(row["correct"]), meta["metrics"]["mcts_accuracy"][f"{v}/{k}"])
    cur = S.curves(data, [1, 2, 4])
    assert cur["mcts"]["steps"]["correct"].shape == (q, len(data["widths"]))
    # rerun the recorded check on its questions: the same accuracy and calls (sampling on
    # another CPU may differ a little; allow one question and 10 % of the calls)
    chk = data["check"]
    model, tok = lm
    probs = list(chain_arithmetic_task().held_out[:chk["n_questions"]])
    res = S.search_problems(model, tok, probs, S.StepSearchConfig(**chk["cfg"]))
    assert abs(sum(r.correct for r in res) - sum(chk["correct"])) <= 1
    assert abs(sum(r.calls for r in res) - sum(chk["calls"])) <= 0.1 * sum(chk["calls"])


def test_draw_step_tree(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res, _ = run("steps")
    fig, ax = plt.subplots()
    pos = S.draw_step_tree(ax, res)
    assert set(pos) == {n.id for n in res.root.nodes() if n.N >= 1}
    assert len(ax.texts) == len(pos)
    pink = [t.get_text() for t in ax.texts if "The answer is 23." in t.get_text()]
    assert pink and "N=" in pink[0]
    with pytest.raises(TypeError):
        S.draw_step_tree(ax, res.root)
    with pytest.raises(TypeError):
        S.draw_step_tree("ax", res)
    plt.close(fig)
    with pytest.raises(FileNotFoundError, match="step_search"):
        S.load_sweep(tmp_path)
