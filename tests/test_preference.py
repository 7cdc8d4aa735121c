"""Preference data (lib.align.preference): gathering, dedup, clustering, stratified sampling, pairs from
the model's own samples judged by the verifier, controlled label noise, the invariants, and the
shipped pairs."""
import numpy as np
import pytest

from lib.align import preference as P
from lib.align.tasks import chain_arithmetic_task


@pytest.fixture(scope="module")
def task():
    return chain_arithmetic_task()


def test_normalize_question_parses_any_spacing():
    a = P.normalize_question("What is 17+6 * 2?")
    b = P.normalize_question("  what is 17 +  6*2 ? ")
    assert a == b and a.expression == "17 + 6 * 2" and a.answer == 29
    with pytest.raises(ValueError, match="What is"):
        P.normalize_question("How much is 2 + 2?")
    with pytest.raises(TypeError):
        P.normalize_question(3)


def test_gather_and_dedup_counts_add_up(task):
    raw = P.gather_prompts(task, n_generated=200, repeat_share=0.3, seed=0, n_gathered=300)
    assert len(raw) == 300 + 90 + 200 and {r.source for r in raw} == set(P.SOURCES)
    kept, st = P.dedup_prompts(raw, exclude=task.held_out)
    assert st["raw"] == len(raw)
    assert st["kept"] + st["exact_duplicates"] + st["spacing_duplicates"] + st["decontaminated"] == len(raw)
    exprs = [p.expression for p, _ in kept]
    assert len(set(exprs)) == len(exprs)                        # no prompt twice
    assert not set(exprs) & {p.expression for p in task.held_out}
    assert st["spacing_duplicates"] >= 90 - st["exact_duplicates"]  # every repeat is caught
    # deterministic
    assert P.gather_prompts(task, 200, 0.3, seed=0, n_gathered=300) == raw
    with pytest.raises(ValueError, match="n_generated"):
        P.gather_prompts(task, -1)
    with pytest.raises(ValueError, match="at least one"):
        P.dedup_prompts([])


def test_features_clusters_and_stratified_sample(task):
    probs = list(task.rl_train[:400])
    x = P.prompt_features(probs)
    assert x.shape == (400, len(P.FEATURES))
    assert np.all(x[:, :3].sum(1) == 1) and np.all(x[:, 3:6].sum(1) == 1)
    labels = P.cluster_prompts(probs, 6, seed=0)
    assert labels.shape == (400,) and set(labels) == set(range(6))
    assert np.array_equal(labels, P.cluster_prompts(probs, 6, seed=0))
    idx = P.stratified_sample(labels, 120, seed=0)
    assert len(idx) == 120 and len(set(idx)) == 120
    sizes = np.bincount(labels)
    got = np.bincount(labels[idx], minlength=6)
    want = P.allocate(sizes, 120)
    assert np.array_equal(got, want) and np.all(got <= sizes)
    assert got.max() - got[got < sizes].min(initial=got.max()) <= 1   # equal where not capped
    with pytest.raises(ValueError, match="two-step"):
        P.prompt_features(list(task.facts[:2]))
    with pytest.raises(ValueError, match="n_clusters"):
        P.cluster_prompts(probs[:3], 5)


def test_allocate_is_water_filling():
    assert P.allocate([10, 10, 10], 9).tolist() == [3, 3, 3]
    assert P.allocate([1, 10, 10], 9).tolist() == [1, 4, 4]
    assert P.allocate([2, 3, 50], 55).tolist() == [2, 3, 50]
    assert P.allocate([5, 5], 0).tolist() == [0, 0]
    with pytest.raises(ValueError, match="n must be"):
        P.allocate([1, 2], 4)


def test_pairs_from_model_samples_respect_the_verifier_and_noise(task):
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    tok = load_tokenizer()
    cold = load_model("tiny-lm-arith-sft")
    probs = list(task.rl_train[:40])
    pairs, st = P.build_pairs(cold, tok, probs, group_size=4, seed=0)
    assert st["pairs"] == len(pairs) == st["prompts"] - st["all_right"] - st["all_wrong"] > 5
    P.check_pairs(pairs, n=len(pairs), noise_share=0.0)
    noisy = P.add_label_noise(pairs, 0.25, seed=0)
    assert sum(p.flipped for p in noisy) == round(0.25 * len(pairs))
    P.check_pairs(noisy, noise_share=0.25)
    assert all(n.swapped() == p for n, p in zip(noisy, pairs) if n.flipped)
    # the invariants can fail
    with pytest.raises(ValueError, match="more than once"):
        P.check_pairs(pairs + pairs[:1])
    with pytest.raises(ValueError, match="chosen equals rejected"):
        P.check_pairs([pairs[0].__class__(**{**pairs[0].__dict__, "rejected_ids": pairs[0].chosen_ids})])
    with pytest.raises(ValueError, match="verifier"):
        P.check_pairs([pairs[0].swapped().__class__(**{**pairs[0].swapped().__dict__, "flipped": False})])
    with pytest.raises(ValueError, match="expected 3 pairs"):
        P.check_pairs(pairs, n=3)
    with pytest.raises(ValueError, match="flipped pairs"):
        P.check_pairs(noisy, noise_share=0.0)
    with pytest.raises(ValueError, match="group_size"):
        P.build_pairs(cold, tok, probs, group_size=1)


def test_json_round_trip_and_shipped_pairs():
    train, ev, meta = P.load_pairs()                         # checks the invariants
    assert len(train) == meta["n_train"] and len(ev) == meta["n_eval"]
    assert P.pairs_from_json(P.pairs_to_json(train[:5])) == train[:5]
    exprs = [p.problem.expression for p in train + ev]
    assert len(set(exprs)) == len(exprs)                     # train and eval prompts are disjoint
    held = {p.expression for p in chain_arithmetic_task().held_out}
    assert not set(exprs) & held                               # decontaminated
    assert sum(p.flipped for p in train) == round(meta["noise_share"] * len(train))


def test_judged_groups_split_each_group_by_the_verifier(task):
    from lib.data import verify_answer
    from lib.llm.checkpoint import load_model
    from lib.llm.tokenizer import load_tokenizer

    tok = load_tokenizer()
    cold = load_model("tiny-lm-arith-sft")
    probs = list(task.rl_train[:12])
    groups = list(P.judged_groups(cold, tok, probs, group_size=4, seed=3, batch_size=5))
    assert [g.index for g in groups] == list(range(len(probs)))
    for g in groups:
        assert all(verify_answer(probs[g.index], t) for _, t in g.right)
        assert not any(verify_answer(probs[g.index], t) for _, t in g.wrong)
        assert len(g.right) <= g.n_right <= 4 and len(g.right) + len(g.wrong) <= 4
        assert g.right == sorted(set(g.right)) and g.wrong == sorted(set(g.wrong))
    again = list(P.judged_groups(cold, tok, probs, group_size=4, seed=3, batch_size=5))
    assert again == groups                                 # seeded: the same draw
